"""The delivery worker: sends outbox rows through their channels, in order per chat,
retrying with backoff what failed for a passing reason (SPEC §7)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import random
import time
from collections.abc import Mapping
from datetime import timedelta

from loguru import logger

from bot.channels.base import Channel, SendError
from bot.metrics import Metrics
from handlers.engine import Clock, utc_now
from handlers.messages import Outgoing
from handlers.staff.delivery_failures import report_undeliverable
from storage.db import Store
from storage.models import OutboxRow

BATCH = 200
IDLE_POLL_SECONDS = 1.0
FIRST_BACKOFF_SECONDS = 1.0
# One hung send must not hold up its chat for ever: it is abandoned and retried later.
SEND_TIMEOUT_SECONDS = 120.0
DISABLED_CHECK_SECONDS = 60.0  # how often to look for rows of platforms not running here
QUEUED_ROWS = 1000  # rows read for the chats a pass starts, at most
# How long a claim on outbox rows holds (PostgreSQL, several instances): long enough for a
# chat's rows to be sent at the platform's pace; a dead instance's rows go out after it.
CLAIM_SECONDS = 120
RECORD_GATHER_SECONDS = 0.005
PASS_INTERVAL_SECONDS = 0.005
CONCURRENT_CHATS = 32  # enough to keep VK's 20/s and Telegram's 30/s busy at ~1 s latency

Chat = tuple[str, str, str]  # (platform, community, chat id): a chat of one community


class DeliveryWorker:
    """Each chat with due messages gets a task of its own that sends them in order, so one
    slow or failing chat never holds up another (SPEC §7, «No barrier in delivery»).

    A row that went out is remembered in memory at once, before anything can fail, and is
    recorded in the database by a recorder that takes everything sent meanwhile into one
    commit. Until it is recorded, no pass offers it again; if recording fails, it is
    retried, so a database error never makes a sent message go out again.
    """

    def __init__(
        self,
        db: Store,
        channels: Mapping[str, Channel],
        *,
        max_attempts: int,
        max_backoff_seconds: float,
        claim_seconds: float = CLAIM_SECONDS,
        clock: Clock = utc_now,
        metrics: Metrics | None = None,
    ) -> None:
        self._db = db
        self._metrics = metrics if metrics is not None else Metrics(channels)
        self._channels = channels
        self._max_attempts = max_attempts
        self._max_backoff = max_backoff_seconds
        self._claim = timedelta(seconds=claim_seconds)
        self._clock = clock
        self._wake = asyncio.Event()
        self._pass_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._chats: dict[Chat, asyncio.Task[int]] = {}  # a task per chat being served
        self._unrecorded: dict[int, tuple[OutboxRow, list[str]]] = {}  # sent, not recorded
        self._recorder: asyncio.Task[None] | None = None
        self._warned_platforms: set[str] = set()
        self._disabled_checked_at: float | None = None
        # Who wakes the worker for a new pass (a query over every pending chat), so that
        # passes stay few under load: a chat whose due row a pass skipped because its task
        # was still going, when that task ends; every chat's end while a pass found all
        # places taken; the recorder, when a pass skipped rows still being recorded.
        self._recheck: set[Chat] = set()
        self._full = False
        self._held_for_record = False

    def wake(self) -> None:
        """Something was written to the outbox: look now instead of at the next poll."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="delivery")

    async def stop(self) -> None:
        """Stop sending; what is not sent stays in the outbox. What was sent is recorded."""
        tasks = [t for t in (self._task, *self._chats.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None
        with contextlib.suppress(Exception):
            await self._record()

    async def drain(self) -> None:
        """Deliver until nothing is due (rows waiting for a later retry are left waiting)."""
        while await self.deliver_due():
            pass

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last = float("-inf")
        while True:
            # Passes at most every PASS_INTERVAL: under a storm of short sends (failures
            # retried, a full house of chats) a pass per finished chat would do little but
            # read the outbox again and again.
            pause = last + PASS_INTERVAL_SECONDS - loop.time()
            if pause > 0:
                await asyncio.sleep(pause)
            last = loop.time()
            try:
                if await self._dispatch():
                    continue  # chats that were busy while it looked are free now
            except Exception:
                logger.exception("delivery pass failed; retrying shortly")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(IDLE_POLL_SECONDS):
                    await self._wake.wait()
            self._wake.clear()

    async def deliver_due(self) -> int:
        """One pass: start every due chat that is not being served yet, and wait until the
        chats being served have nothing more due and what they sent is recorded; returns
        how many rows were handled."""
        handled = 0
        while True:
            deferred = await self._dispatch()
            held = self._held_for_record  # chats whose sent head was still being recorded
            while self._chats:
                results = await asyncio.gather(*self._chats.values(), return_exceptions=True)
                handled += sum(r for r in results if isinstance(r, int))
            if held:
                await self._record()
                held = not self._unrecorded  # recorded: their next rows are due now
            if not deferred and not held:
                break
        await self._record()
        return handled

    async def _dispatch(self) -> int:
        """Give every due chat that has no task a task of its own; returns how many due
        chats were left for the next pass because they were busy while it looked."""
        deferred = 0
        async with self._pass_lock:
            if self._unrecorded:
                self._record_soon()
            self._full = len(self._chats) >= CONCURRENT_CHATS
            if self._full:
                return deferred
            waiting: list[str] = []
            check = self._disabled_check_due()
            # What was being sent or recorded before the read: the read may have seen such
            # a row as pending just before its record was written, and by now the record
            # may be committed and the chat's task gone. Such chats wait for the next pass.
            busy = set(self._chats)
            unrecorded = set(self._unrecorded)
            now = self._clock()
            async with self._db.transaction() as tx:
                if check:
                    waiting = await tx.outbox.platforms_waiting()
                rows = await tx.outbox.due_heads(now, list(self._channels), BATCH)
                # Everything due in the chats that will get a task, in one read: a chat's
                # task sends its list without asking the database again.
                free = [_chat(r) for r in rows if _chat(r) not in busy]
                # Shared: only the chats there is room for now, as each is claimed.
                room = CONCURRENT_CHATS - len(self._chats) if self._db.shared else CONCURRENT_CHATS
                candidates = free[:room]
                offered = set(candidates)
                queued = await tx.outbox.due_in_chats(candidates, now, QUEUED_ROWS)
                mine: set[int] | None = None
                if self._db.shared:
                    # Several instances on one database (SPEC §15): the chats this pass may
                    # start are claimed first; rows another instance holds are left to it.
                    mine = await tx.outbox.claim(
                        sorted(
                            {r.id for r in rows if _chat(r) in offered}
                            | {r.id for q in queued.values() for r in q}
                        ),
                        now,
                        now + self._claim,
                    )
            if mine is not None:
                rows = [r for r in rows if _chat(r) not in offered or r.id in mine]
                queued = {chat: _claimed_prefix(q, mine) for chat, q in queued.items()}
            started: set[int] = set()
            self._warn_about_disabled(waiting)
            busy |= set(self._chats)
            unrecorded |= set(self._unrecorded)
            for row in rows:
                chat = _chat(row)
                if chat in self._chats:
                    self._recheck.add(chat)
                    continue
                if row.id in self._unrecorded:
                    self._held_for_record = True
                    continue
                if chat in busy or row.id in unrecorded:
                    deferred += 1
                    continue
                if len(self._chats) >= CONCURRENT_CHATS:
                    self._full = True
                    break
                if mine is not None and row.id not in mine:
                    continue  # not claimed in this pass: a later one claims it first
                chat_rows = queued.get(chat) or [row]
                if chat_rows[0].id != row.id:
                    chat_rows = [row]
                started.update(r.id for r in chat_rows)
                task = asyncio.create_task(self._serve(chat_rows), name=f"delivery {row.platform}")
                self._chats[chat] = task
                task.add_done_callback(functools.partial(self._served, chat))
            if mine is not None and mine - started:
                # Claimed, then not started (the chat got busy meanwhile, the house full):
                # given back at once, not left waiting for the claim to expire.
                async with self._db.transaction() as tx:
                    await tx.outbox.release(sorted(mine - started))
        return deferred

    def _served(self, chat: Chat, task: asyncio.Task[int]) -> None:
        if self._chats.get(chat) is task:
            del self._chats[chat]
        if not task.cancelled() and task.exception() is not None:
            logger.opt(exception=task.exception()).error(
                "delivery to a chat failed platform={}", chat[0]
            )
        # Shared (PostgreSQL): a pass does not see a chat whose head this instance has
        # claimed (storage/outbox.py due_heads), so it cannot have asked for a recheck.
        recheck = chat in self._recheck or self._db.shared
        if recheck or self._full or task.cancelled() or task.exception():
            self._recheck.discard(chat)
            self.wake()  # this chat may have more, or a place is free for one that waits

    async def _serve(self, rows: list[OutboxRow]) -> int:
        """Send one chat's due rows in order until one fails. Rows written for the chat
        meanwhile wake the worker, whose pass comes back to it when this task ends."""
        handled = 0
        for row in rows:
            handled += 1
            message_ids = await self._send(self._channels[row.platform], row)
            if message_ids is None:
                await self._give_back(rows[handled:])
                return handled
            self._unrecorded[row.id] = (row, message_ids)  # first: this cannot fail
            self._record_soon()
        return handled

    async def _give_back(self, rows: list[OutboxRow]) -> None:
        """Shared database: the rows of a chat that wait behind a retry are given back, so the
        chat's next pass (after the retry's delay) claims them again; kept, they would wait
        for the claim to expire ([delivery] claim_seconds)."""
        if not rows or not self._db.shared:
            return
        try:
            async with self._db.transaction() as tx:
                await tx.outbox.release([row.id for row in rows])
        except Exception as error:  # they go out when their claim expires
            logger.warning(
                "claims not given back ({}) platform={}", type(error).__name__, rows[0].platform
            )

    def _record_soon(self) -> None:
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record_all(), name="delivery-record")

    async def _record(self) -> None:
        """Wait until what was sent so far is recorded (or recording failed)."""
        while self._recorder is not None and not self._recorder.done():
            await asyncio.wait([self._recorder])
        if self._unrecorded:
            self._record_soon()
            assert self._recorder is not None
            await asyncio.wait([self._recorder])

    async def _record_all(self) -> None:
        """Record the rows sent meanwhile, many in one commit: those sent while one commit
        runs go into the next. A failure leaves them remembered, for the next pass."""
        while self._unrecorded:
            # A moment for the sends finishing meanwhile to join this commit: recording late
            # delays nothing a person sees, and one fsync then serves many messages.
            await asyncio.sleep(RECORD_GATHER_SECONDS)
            batch = list(self._unrecorded.values())
            try:
                async with self._db.transaction() as tx:
                    await tx.outbox.mark_sent_many(batch, self._clock())
            except Exception:
                logger.exception(
                    "{} sent messages not recorded; recorded later, never sent again", len(batch)
                )
                return
            for row, _ in batch:
                self._unrecorded.pop(row.id, None)
            if self._held_for_record or self._db.shared:
                self._held_for_record = False
                self.wake()  # chats held back while their rows were being recorded

    def _disabled_check_due(self) -> bool:
        """Whether to look for rows of platforms not running here (a whole-outbox query,
        so once a minute, not on every pass)."""
        now = time.monotonic()
        if (
            self._disabled_checked_at is not None
            and now - self._disabled_checked_at < DISABLED_CHECK_SECONDS
        ):
            return False
        self._disabled_checked_at = now
        return True

    def _warn_about_disabled(self, platforms: list[str]) -> None:
        # A process with the console alone (the demo) has no messenger by design: what it
        # queues for one is no operator's problem, so it is said at INFO, not WARNING.
        log = logger.info if set(self._channels) <= {"console"} else logger.warning
        for platform in platforms:
            if platform not in self._channels and platform not in self._warned_platforms:
                self._warned_platforms.add(platform)
                log(
                    "outbox has messages for platform={} but its channel is not enabled; "
                    "they wait until it is",
                    platform,
                )

    async def _send(self, channel: Channel, row: OutboxRow) -> list[str] | None:
        """Send one row; its message ids, or None if it failed (and was recorded so)."""
        try:
            message = Outgoing.from_body(
                row.platform,
                row.chat_id,
                json.loads(row.body),
                row.appeal_number,
                row.send_key,
                community=row.community,
            )
        except (ValueError, KeyError, TypeError, IndexError) as error:
            await self._failed(row, f"unreadable outbox body: {error!r}", False, None)
            return None
        try:
            async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
                message_ids = await channel.send(message)
        except TimeoutError:
            await self._failed(row, f"no answer in {SEND_TIMEOUT_SECONDS:.0f}s", True, None)
            return None
        except SendError as error:
            await self._failed(row, error.reason, error.retryable, error.retry_after)
            return None
        except Exception as error:  # an unexpected failure is treated as a passing one
            logger.exception("send raised platform={} outbox={}", row.platform, row.id)
            await self._failed(row, f"{type(error).__name__}: {error}", True, None)
            return None
        self._metrics.sent(row.platform)
        logger.debug(
            "sent outbox={} platform={} appeal={}", row.id, row.platform, row.appeal_number
        )
        return message_ids

    async def _failed(
        self, row: OutboxRow, reason: str, retryable: bool, retry_after: float | None
    ) -> None:
        attempts = row.attempts + 1
        appeal = f"№{row.appeal_number}" if row.appeal_number else "-"
        self._metrics.send_error(row.platform, retryable=retryable)
        failed = False
        async with self._db.transaction() as tx:
            if retryable and attempts < self._max_attempts:
                delay = self.backoff(attempts, retry_after)
                await tx.outbox.mark_retry(row.id, reason, self._clock() + timedelta(seconds=delay))
                logger.warning(
                    "send failed, retry in {:.1f}s platform={} appeal {} outbox={} attempt={}: {}",
                    delay,
                    row.platform,
                    appeal,
                    row.id,
                    attempts,
                    reason,
                )
            else:
                await tx.outbox.mark_failed(row.id, reason)
                # In the same transaction: a failure is never left unreported by a crash.
                if await report_undeliverable(tx, row, reason, self._clock()):
                    self.wake()
                failed = True
                logger.error(
                    "send failed for good platform={} appeal {} outbox={} attempts={}: {}",
                    row.platform,
                    appeal,
                    row.id,
                    attempts,
                    reason,
                )
        if failed:  # counted once its record is committed
            self._metrics.delivery_failed(row.platform)

    def backoff(self, attempts: int, retry_after: float | None) -> float:
        """About 1 s doubling per attempt, capped, with ±20 % jitter; at least `retry_after`."""
        base = min(self._max_backoff, FIRST_BACKOFF_SECONDS * 2 ** (attempts - 1))
        delay = base * random.uniform(0.8, 1.2)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return float(min(delay, max(self._max_backoff, retry_after or 0.0)))


def _chat(row: OutboxRow) -> Chat:
    return (row.platform, row.community, row.chat_id)


def _claimed_prefix(rows: list[OutboxRow], mine: set[int]) -> list[OutboxRow]:
    """A chat's rows up to the first this instance did not claim (order within a chat)."""
    taken = []
    for row in rows:
        if row.id not in mine:
            break
        taken.append(row)
    return taken
