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
from handlers.comments import comment_flood, handle_comment
from handlers.context import Context, ReadAhead, Work
from handlers.dialogue.resident import handle_resident, withdrawal
from handlers.flood import FloodGuard, Verdict
from handlers.messages import COMMENT_DELETE, COMMENT_NEW, Incoming, Outgoing
from handlers.notify import queue
from handlers.settings import HandlerSettings
from handlers.staff.actions import Outcome
from handlers.staff.router import handle_staff, read_ahead, reads_ahead
from handlers.text_input import clean_text
from storage.db import Store, Tx
from storage.models import Resident
from storage.staff import StaffMember

Clock = Callable[[], datetime]
Notify = Callable[[], None]
Handler = Callable[[Context], Awaitable[None]]
# A staff action bound to its arguments (handlers/staff/actions.py), as a form calls it.
StaffAction = Callable[[Work, StaffMember], Awaitable[Outcome]]
FAILED_REMEMBERED = 10_000  # senders whose last update failed, kept to tell a repeat


def utc_now() -> datetime:
    return datetime.now(UTC)


def _adds(message: Incoming) -> bool:
    """Whether a comment event may add an item (a new comment), not only change one."""
    return message.comment is not None and message.comment.action == COMMENT_NEW


def _event_key(message: Incoming) -> str | None:
    """The event id as it is recorded: a platform numbers each community's (bot's) events
    on its own (Telegram update_id), so another community's are kept apart."""
    if message.event_id is None or not message.community:
        return message.event_id
    return f"{message.community}/{message.event_id}"


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
                event = _event_key(message)
                arrival = await tx.arrive(
                    message.platform, message.user_id, message.identity, event
                )
                if arrival.seen:
                    logger.info(
                        "duplicate event ignored platform={} event={}",
                        message.platform,
                        message.event_id,
                    )
                    return False
                if event is not None:
                    await tx.events.record(message.platform, event, now)
                comment = message.comment is not None
                if comment and arrival.resident is None and not self._may_add_item(message):
                    # An edit or a deletion changes an item, whose author is on record if
                    # it is one; a community that takes no comments adds none: nobody new
                    # is written down for it.
                    resident = Resident(0, message.platform, message.user_id, "", None, None, None)
                else:
                    resident = await tx.residents.get_or_create(
                        message.platform,
                        message.user_id,
                        # A comment comes from a post, not a chat: the author's private chat
                        # on VK and MAX has their user id; only a message there changes it.
                        message.user_id if comment else message.chat_id,
                        now,
                        known=arrival.resident,
                        community=message.community,
                        keep_chat=comment,
                    )
                staff = arrival.staff
                ctx = Context(message, tx, self.settings, now, resident, staff, ahead=ahead)
                if staff is not None:
                    self._flood.exempt(message.identity)
                if comment:
                    # Never answered into the "chat" it came from: that would be public.
                    if verdict is Verdict.WARN and staff is None:
                        await comment_flood(ctx)
                    else:
                        await handle_comment(ctx, banned=arrival.ban is not None)
                elif verdict is Verdict.WARN and staff is None:
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
                warning = Outgoing(
                    message.platform,
                    message.chat_id,
                    texts.FLOOD_WARNING,
                    community=message.community,
                )
                await queue(tx, warning, now)
        if verdict is Verdict.WARN:
            logger.warning("flood: messages ignored for a while platform={}", message.platform)
            self._notify()
        return False

    def _may_add_item(self, message: Incoming) -> bool:
        """Whether a comment event may become a new item: a new comment, in a community
        that takes comments."""
        community = self.settings.community(message.platform, message.community)
        return _adds(message) and community is not None and community.comments

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
        if message.comment is not None and message.comment.action == COMMENT_DELETE:
            return Verdict.PASS  # a deletion closes an item; edits count like comments
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
        # A comment's failure says nothing of the person's private form: not counted.
        repeated = identity in self._failed and message.comment is None
        if message.comment is None:
            self._failed[identity] = None
            self._failed.move_to_end(identity)
            while len(self._failed) > FAILED_REMEMBERED:
                self._failed.popitem(last=False)
        try:
            async with self.db.transaction() as tx:
                if inbox_id is not None:
                    await tx.inbox.mark_done(inbox_id, now)
                if message.comment is None:  # under a post it would be said in public
                    sorry = Outgoing(
                        message.platform,
                        message.chat_id,
                        texts.SOMETHING_WENT_WRONG,
                        community=message.community,
                    )
                    await queue(tx, sorry, now)
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
        await queue(tx, out, now)
