"""The inbox worker (SPEC §7, «Acknowledged means durable»).

A webhook writes the raw update to the inbox table and answers 200 only once that write is
committed (concurrent webhooks share one commit, storage/db.py). This worker handles the
rows in the order they came, one sender's in turn and different senders' together
(bot/channels/lanes.py); the handler's own transaction marks a row done, so a crash or a stop
at any point leaves each update either handled or waiting here, never lost and never handled
twice. Past `limit` unhandled rows a webhook answers 503 and the platform retries later,
instead of memory or the table growing without end.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Awaitable, Callable

from loguru import logger

from bot.channels.lanes import in_sender_order
from handlers.engine import Clock
from storage.db import Store
from storage.models import InboxRow

BATCH = 100  # rows taken at once; those of different senders are handled together
IDLE_POLL_SECONDS = 1.0
FAILURE_PAUSE_MAX = 30.0

InboxHandler = Callable[[InboxRow], Awaitable[None]]


class Accepted(enum.Enum):
    NEW = "new"  # written: answer 200
    DUPLICATE = "duplicate"  # the platform sent it again: answer 200, nothing to do
    FULL = "full"  # too many unhandled: answer 503, the platform retries


class IntakeClosed(Exception):
    """The app is stopping: the update was not handled and must not be counted as such."""


class Inbox:
    def __init__(self, db: Store, clock: Clock, limit: int) -> None:
        self._db = db
        self._clock = clock
        self._limit = limit
        self._handlers: dict[str, InboxHandler] = {}
        self._pending = 0
        self._accepted = 0  # rows accepted since start: an idle worker saw them all
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_batch: set[int] = set()

    def register(self, platform: str, handler: InboxHandler) -> None:
        """The channel that handles `platform`'s rows (parses the body, hands it in)."""
        self._handlers[platform] = handler

    async def accept(
        self, platform: str, community: str, event_id: str | None, sender: str, body: str
    ) -> Accepted:
        """Keep one update, durably; the webhook answers according to the result."""
        # Ids come from the body: a hostile one may hold a lone surrogate, which the
        # database cannot store. Such an event id is not one a platform sends: it is kept
        # without deduplication; a sender is kept escaped.
        if event_id is not None and not _storable(event_id):
            event_id = None
        if not _storable(sender):
            sender = sender.encode("utf-8", "backslashreplace").decode("utf-8")
        if self._pending >= self._limit:
            logger.warning(
                "inbox full ({} unhandled), webhook refused platform={}", self._pending, platform
            )
            return Accepted.FULL
        async with self._db.transaction() as tx:
            added = await tx.inbox.add(platform, community, event_id, sender, body, self._clock())
        if not added:
            logger.info("duplicate webhook ignored platform={} event={}", platform, event_id)
            return Accepted.DUPLICATE
        self._pending += 1
        self._accepted += 1
        self._idle.clear()
        self._wake.set()
        return Accepted.NEW

    async def done(self, row: InboxRow) -> None:
        """Mark a row handled that never reached the engine (not for us, malformed, a page
        of «Ещё»): the engine marks the others in their own transaction."""
        async with self._db.transaction() as tx:
            await tx.inbox.mark_done(row.id, self._clock())

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="inbox")

    async def stop(self) -> None:
        """Stop taking rows; the updates in hand finish (the engine shields them), the rest
        wait in the table for the next start."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def settle(self) -> None:
        """Wait until every row of a running channel is handled."""
        if self._task is None:
            return
        while not self._idle.is_set():
            if self._task.done():
                raise RuntimeError("the inbox worker has stopped")
            self._wake.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(IDLE_POLL_SECONDS):
                    await self._idle.wait()

    async def _run(self) -> None:
        """For ever: a batch of rows at a time. An error is logged and retried after a
        growing pause; the loop itself never ends but by cancellation, since a dead worker
        behind a live 200 endpoint would swallow every update."""
        pause = 1.0
        while True:
            accepted = self._accepted
            try:
                handled = await self._batch()
                pause = 1.0
            except Exception:
                logger.exception("inbox worker failed; retrying in {:.0f}s", pause)
                self._last_batch = set()  # after the pause, the same rows are tried again
                await asyncio.sleep(pause)
                pause = min(pause * 2, FAILURE_PAUSE_MAX)
                continue
            if not handled:
                # Idle only if nothing was accepted meanwhile: a row committed together
                # with this batch's read (a group commit) was not in what it read.
                if self._accepted == accepted:
                    self._idle.set()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(IDLE_POLL_SECONDS):
                        await self._wake.wait()
                self._wake.clear()

    async def _batch(self) -> int:
        async with self._db.transaction() as tx:
            rows = await tx.inbox.pending(list(self._handlers), BATCH)
            self._pending = await tx.inbox.pending_count()
        if not rows:
            return 0
        again = [row.id for row in rows if row.id in self._last_batch]
        if again:  # handled but not marked done: the database failed meanwhile, say
            raise RuntimeError(f"inbox rows {again[:5]} were handled but are still pending")
        self._last_batch = {row.id for row in rows}
        await in_sender_order(rows, _lane, self._handle)
        return len(rows)

    async def _handle(self, row: InboxRow) -> None:
        try:
            await self._handlers[row.platform](row)
        except IntakeClosed:
            raise
        except Exception:
            # A channel's handler lets nothing through on purpose: this row would fail for
            # ever. It is dropped (logged with its platform, not its content).
            logger.exception(
                "inbox row {} could not be handled, dropped platform={}", row.id, row.platform
            )
            await self.done(row)


def _storable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _lane(row: InboxRow) -> tuple[str, str, str]:
    return (row.platform, row.community, row.sender)
