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
from handlers.context import Context
from handlers.dialogue.resident import handle_resident, withdrawal
from handlers.flood import FloodGuard, Verdict
from handlers.messages import Incoming, Outgoing
from handlers.settings import HandlerSettings
from handlers.staff.router import handle_staff
from handlers.text_input import clean_text
from storage.db import Store

Clock = Callable[[], datetime]
Notify = Callable[[], None]
Handler = Callable[[Context], Awaitable[None]]
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
            async with self.db.transaction() as tx:
                if inbox_id is not None and not await tx.inbox.mark_done(inbox_id, now):
                    # Handled already: by another instance on the same database (SPEC §15),
                    # which reads the same inbox; the row itself says so, event id or not.
                    logger.info("inbox row handled already platform={}", message.platform)
                    return False
                if message.event_id is not None and not await tx.events.record_once(
                    message.platform, message.event_id, now
                ):
                    logger.info(
                        "duplicate event ignored platform={} event={}",
                        message.platform,
                        message.event_id,
                    )
                    return False
                arrival = await tx.arrive(message.platform, message.user_id, message.identity)
                resident = await tx.residents.get_or_create(
                    message.platform, message.user_id, message.chat_id, now, known=arrival.resident
                )
                staff = arrival.staff
                ctx = Context(message, tx, self.settings, now, resident, staff)
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
                for out in ctx.outgoing:
                    await tx.outbox.add(
                        out.platform, out.chat_id, out.body(), now, appeal_number=out.appeal_number
                    )
        except Exception:
            logger.exception("update failed platform={} chat={}", message.platform, message.chat_id)
            await self._apologise(message, now, inbox_id)
            return False
        self._failed.pop(message.identity, None)
        self._notify()
        return True

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
                await tx.outbox.add(warning.platform, warning.chat_id, warning.body(), now)
        if verdict is Verdict.WARN:
            logger.warning("flood: messages ignored for a while platform={}", message.platform)
            self._notify()
        return False

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
                await tx.outbox.add(sorry.platform, sorry.chat_id, sorry.body(), now)
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
