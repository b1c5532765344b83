"""The unit of work around every update: once-only check, the handler, the outbox, one commit.

Channels hand every normalized message to `Engine.handle`. Within one transaction it records
the platform event id, lets the conversation logic decide what to say, and writes the replies
to the outbox, so that a crash leaves either all of an update's effects or none of them.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime

from loguru import logger

from handlers import texts
from handlers.context import Context, ReadAhead, Work
from handlers.dialogue.resident import handle_resident, withdrawal
from handlers.flood import FloodGuard, Verdict
from handlers.messages import Incoming, Outgoing
from handlers.settings import HandlerSettings
from handlers.staff.actions import Outcome
from handlers.staff.router import handle_staff, read_ahead, reads_ahead
from handlers.text_input import clean_text
from storage.db import Store, Tx
from storage.staff import StaffMember

Clock = Callable[[], datetime]
Notify = Callable[[], None]
Handler = Callable[[Context], Awaitable[None]]
# A staff action bound to its arguments (handlers/staff/actions.py), as a form calls it.
StaffAction = Callable[[Work, StaffMember], Awaitable[Outcome]]
FAILED_REMEMBERED = 10_000  # senders whose last update failed, kept to tell a repeat


def utc_now() -> datetime:
    return datetime.now(UTC)


class Engine:
    def __init__(
        self,
        db: Store,
        settings: HandlerSettings,
        *,
        clock: Clock = utc_now,
        on_outbox: Notify | None = None,
        unflooded: Collection[str] = (),
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self._on_outbox = on_outbox
        # Senders whose last update failed: a second failure in a row drops their draft.
        self._failed: OrderedDict[str, None] = OrderedDict()
        self._flood = FloodGuard(settings.limits.messages_per_minute)
        # Platforms where one person types at a keyboard (the demo's console): no flood.
        self._unflooded = frozenset(unflooded)

    async def handle(self, message: Incoming, *, inbox_id: int | None = None) -> bool:
        """Process one update; False if it was a redelivery and changed nothing.

        Never raises for a bad message: a failure rolls the update back, is logged, and the
        person gets a short apology instead of silence. `inbox_id`, the inbox row the update
        came from, is marked done in the transaction of the update's effects (or of the
        apology), so it is handled exactly once.
        """
        message = dataclasses.replace(
            message,
            text=clean_text(message.text),
            display_name=clean_text(message.display_name),
        )
        now = self.clock()
        verdict = self._verdict(message, now)
        if verdict is Verdict.DROP:
            logger.debug("message dropped during a flood cool-down platform={}", message.platform)
            if inbox_id is not None:
                async with self.db.transaction() as tx:
                    await tx.inbox.mark_done(inbox_id, now)
            return False
        try:
            ahead = await self._read_ahead(message, now)
            async with self.db.transaction() as tx:
                if inbox_id is not None and not await tx.inbox.mark_done(inbox_id, now):
                    # Handled already: by another instance on the same database (SPEC §15),
                    # which reads the same inbox; the row itself says so, event id or not.
                    logger.info("inbox row handled already platform={}", message.platform)
                    return False
                arrival = await tx.arrive(
                    message.platform, message.user_id, message.identity, message.event_id
                )
                if arrival.seen:
                    logger.info(
                        "duplicate event ignored platform={} event={}",
                        message.platform,
                        message.event_id,
                    )
                    return False
                if message.event_id is not None:
                    await tx.events.record(message.platform, message.event_id, now)
                resident = await tx.residents.get_or_create(
                    message.platform, message.user_id, message.chat_id, now, known=arrival.resident
                )
                staff = arrival.staff
                ctx = Context(message, tx, self.settings, now, resident, staff, ahead=ahead)
                if staff is not None:
                    self._flood.exempt(message.identity)
                if verdict is Verdict.WARN and staff is None:
                    ctx.reply(texts.FLOOD_WARNING)
                    logger.warning(
                        "flood: messages ignored for a while platform={} chat={}",
                        message.platform,
                        message.chat_id,
                    )
                elif staff is not None:
                    await handle_staff(ctx)
                elif not await self._turned_away(ctx):
                    await handle_resident(ctx)
                await _queue(tx, ctx.outgoing, now)
        except Exception:
            logger.exception("update failed platform={} chat={}", message.platform, message.chat_id)
            await self._apologise(message, now, inbox_id)
            return False
        self._failed.pop(message.identity, None)
        self._notify()
        return True

    async def act(self, identity: str, action: StaffAction) -> Outcome | None:
        """A staff action called from outside a chat (a dashboard form): in one transaction,
        with the person's rights as they are now, its messages queued like an update's. None
        when `identity` is no longer staff. The action writes its own audit line."""
        now = self.clock()
        async with self.db.transaction() as tx:
            staff = await tx.staff.member(identity)
            if staff is None:
                return None
            outcome = await action(Work(tx, self.settings, now), staff)
            await _queue(tx, outcome.messages, now)
        if outcome.messages:
            self._notify()
        return outcome

    async def admit(self, message: Incoming, *, inbox_id: int | None = None) -> bool:
        """Whether an update that its channel answers by itself (the next page of a long
        keyboard, «Ещё») may be answered: it counts towards the flood limit like any other.
        If not, the one warning is queued where due, and the inbox row is marked done."""
        now = self.clock()
        verdict = self._verdict(message, now)
        if verdict is Verdict.PASS:
            return True
        async with self.db.transaction() as tx:
            if inbox_id is not None:
                await tx.inbox.mark_done(inbox_id, now)
            if verdict is Verdict.WARN:
                warning = Outgoing(message.platform, message.chat_id, texts.FLOOD_WARNING)
                await tx.outbox.queue(warning.platform, warning.chat_id, warning.body(), now)
        if verdict is Verdict.WARN:
            logger.warning("flood: messages ignored for a while platform={}", message.platform)
            self._notify()
        return False

    async def _read_ahead(self, message: Incoming, now: datetime) -> ReadAhead:
        """Long reads first, outside the transaction: the writer (and every other update)
        does not wait for them. Only `/stats` reads here; anything else costs nothing."""
        if not reads_ahead(message):
            return ReadAhead()
        async with self.db.read() as view:
            return await read_ahead(message, view, self.settings, now)

    def _verdict(self, message: Incoming, now: datetime) -> Verdict:
        if message.platform in self._unflooded:
            return Verdict.PASS
        return self._flood.check(message.identity, now)

    async def _turned_away(self, ctx: Context) -> bool:
        """A banned identity is told once, then ignored; it creates nothing (SPEC §6)."""
        ban = await ctx.tx.bans.get(ctx.message.identity)
        if ban is None:
            return False
        if await withdrawal(ctx):  # withdrawing consent works for everyone (152-ФЗ)
            return True
        if not ban.notified:
            ctx.reply(texts.BANNED_NOTICE.format(formal_url=self.settings.formal_appeal_url))
            await ctx.tx.bans.mark_notified(ban.identity)
        logger.info("message from a banned identity ignored platform={}", ctx.message.platform)
        return True

    async def _apologise(self, message: Incoming, now: datetime, inbox_id: int | None) -> None:
        """Say sorry. Failing twice in a row for the same person, the dialogue state is what
        breaks (a draft written by an older version, say): it is dropped, so the next
        message starts from the menu instead of failing for ever."""
        identity = message.identity
        repeated = identity in self._failed
        self._failed[identity] = None
        self._failed.move_to_end(identity)
        while len(self._failed) > FAILED_REMEMBERED:
            self._failed.popitem(last=False)
        try:
            async with self.db.transaction() as tx:
                if inbox_id is not None:
                    await tx.inbox.mark_done(inbox_id, now)
                sorry = Outgoing(message.platform, message.chat_id, texts.SOMETHING_WENT_WRONG)
                await tx.outbox.queue(sorry.platform, sorry.chat_id, sorry.body(), now)
                if repeated:
                    await tx.drafts.delete(message.platform, message.user_id)
                    logger.warning(
                        "draft dropped after repeated failures platform={}", message.platform
                    )
        except Exception:
            logger.exception("could not queue the apology platform={}", message.platform)
            return
        self._notify()

    def _notify(self) -> None:
        if self._on_outbox is not None:
            self._on_outbox()


async def _queue(tx: Tx, messages: Collection[Outgoing], now: datetime) -> None:
    """Messages into the outbox, in the transaction of the change that caused them."""
    for out in messages:
        await tx.outbox.queue(
            out.platform, out.chat_id, out.body(), now, appeal_number=out.appeal_number
        )
