"""The deadline scheduler (SPEC §8): inside `appeals-bot run`, a pass of
`handlers.figures.deadlines.deadline_pass` every PASS_SECONDS, which queues the reminders and
escalations that have fallen due and wakes the delivery worker.

Every pass works from the database (what is due, what was already sent), so the schedule
needs no state of its own: after a restart the first pass, PASS_SECONDS later, sends
whatever fell due meanwhile, and nothing twice. Tests call `run_once(now)` with their own
clock instead of waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime

from loguru import logger

from handlers.engine import Clock, utc_now
from handlers.figures.deadlines import PassResult, deadline_pass
from handlers.settings import HandlerSettings
from storage.db import Store

PASS_SECONDS = 30.0


class DeadlineScheduler:
    def __init__(
        self,
        db: Store,
        settings: HandlerSettings,
        *,
        clock: Clock = utc_now,
        on_outbox: Callable[[], None] | None = None,
        interval: float | None = None,
    ) -> None:
        self._db = db
        self._settings = settings
        self._clock = clock
        self._on_outbox = on_outbox
        self._interval = PASS_SECONDS if interval is None else interval
        self._stopping = asyncio.Event()
        self._lock = asyncio.Lock()  # one pass at a time (the loop's, or a test's)
        self._task: asyncio.Task[None] | None = None
        self.passes = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        self._stopping.clear()
        # One instance at a time sends reminders and escalations (SPEC §15).
        self._task = asyncio.create_task(
            self._db.exclusively("deadlines", self._run), name="deadlines"
        )

    async def stop(self) -> None:
        """Stop after the pass in hand, if any (a pass is one transaction either way)."""
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run_once(self, now: datetime | None = None) -> PassResult:
        """One pass at `now` (default: the clock's time)."""
        async with self._lock:
            result = await deadline_pass(self._db, self._settings, now or self._clock())
            self.passes += 1
        if result.messages:
            logger.info(
                "deadline pass: {} reminders, {} escalations, {} messages queued",
                result.reminders,
                result.escalations,
                result.messages,
            )
            if self._on_outbox is not None:
                self._on_outbox()
        return result

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._stopping.wait()
            if self._stopping.is_set():
                return
            try:
                await self.run_once()
            except Exception:
                logger.exception("deadline pass failed; trying again in {:.0f} s", self._interval)
