"""What /healthz and /metrics report (SPEC §17): the database and the channels, looked at
when asked.

/healthz is 200 while the database answers a cheap query (the latest appeal's number, from
the end of the primary key) within `db_timeout` seconds and every enabled channel is
receiving (`Channel.liveness`: a long-poll channel has completed a poll within
[web] health_poll_seconds, or waits on standby while another instance on the same database
holds the poll, detail "standby", SPEC §15; a webhook channel's address was accepted by its
platform). It is 503 otherwise, and the JSON body names what fails first:

    {"status": "ok", "database": "ok", "channels": {"vk": {"receiving": true, ...}}}
    {"status": "failing", "failing": ["vk: no poll completed for 95 s"], ...}

A query that does not answer in time is not cancelled (a transaction cut in the middle
helps no one): it goes on in the background, and the next check waits for the same one
instead of piling up another behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from loguru import logger

from bot.channels.base import Channel, Liveness
from bot.metrics import DatabaseState, Metrics, State
from handlers.engine import Clock
from storage.appeals import WAITING_STATUSES
from storage.db import Store
from storage.models import OPEN_STATUSES

DB_TIMEOUT_SECONDS = 2.0
COUNT_CAP = 1_000_000  # appeals counted at most per figure: index ranges, never a table scan

T = TypeVar("T")


class Monitor:
    def __init__(
        self,
        db: Store,
        channels: Mapping[str, Channel],
        metrics: Metrics,
        clock: Clock,
        *,
        poll_limit: float,
        db_timeout: float = DB_TIMEOUT_SECONDS,
    ) -> None:
        self.db = db
        self.channels = channels
        self.metrics = metrics
        self.clock = clock
        self.poll_limit = poll_limit
        self.db_timeout = db_timeout
        self._probes: dict[str, asyncio.Task[Any]] = {}

    async def health(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, the JSON body)."""
        failing: list[str] = []
        try:
            await self._bounded("ping", self._ping)
            database = "ok"
        except TimeoutError:
            database = f"no answer within {self.db_timeout:g} s"
        except Exception as error:
            database = f"{type(error).__name__}: {error}"
        if database != "ok":
            failing.append(f"database: {database}")
        channels = self.liveness()
        for platform, liveness in channels.items():
            if not liveness.receiving:
                failing.append(f"{platform}: {liveness.detail}")
        body: dict[str, Any] = {"status": "failing" if failing else "ok"}
        if failing:
            body["failing"] = failing
        body["database"] = database
        body["channels"] = {
            platform: {
                "receiving": liveness.receiving,
                "how": liveness.how,
                "detail": liveness.detail,
                "last_update_seconds_ago": None
                if liveness.last_seconds_ago is None
                else round(liveness.last_seconds_ago, 1),
            }
            for platform, liveness in channels.items()
        }
        return not failing, body

    async def metrics_text(self) -> tuple[bytes, str]:
        """The /metrics page and its content type."""
        try:
            database: DatabaseState | None = await self._bounded("state", self._read_state)
        except Exception as error:  # TimeoutError included: reported as database_up 0
            logger.warning("/metrics: the database did not answer ({})", type(error).__name__)
            database = None
        return self.metrics.render(State(database=database, channels=self.liveness()))

    def liveness(self) -> dict[str, Liveness]:
        now = time.monotonic()
        return {p: c.liveness(self.poll_limit, now) for p, c in self.channels.items()}

    async def close(self) -> None:
        """Stop the queries still running (before the database closes)."""
        for task in self._probes.values():
            task.cancel()
        for task in self._probes.values():
            with contextlib.suppress(BaseException):
                await task
        self._probes.clear()

    async def _bounded(self, key: str, query: Callable[[], Awaitable[T]]) -> T:
        """`query()`'s result, or TimeoutError after `db_timeout` s (the query goes on)."""
        task = self._probes.get(key)
        if task is None or task.done():
            task = asyncio.ensure_future(query())
            task.add_done_callback(_observe)
            self._probes[key] = task
        done, _ = await asyncio.wait({task}, timeout=self.db_timeout)
        if not done:
            raise TimeoutError
        result: T = task.result()
        return result

    async def _ping(self) -> int:
        async with self.db.transaction() as tx:
            return await tx.appeals.last_number()

    async def _read_state(self) -> DatabaseState:
        now = self.clock()
        async with self.db.transaction() as tx:
            pending = await tx.outbox.count("pending")
            oldest = await tx.outbox.oldest_pending_at()
            appeals_open = {
                str(status): await tx.appeals.count(
                    statuses=[status], settlements=None, up_to=COUNT_CAP
                )
                for status in OPEN_STATUSES
            }
            overdue = await tx.appeals.count(
                statuses=WAITING_STATUSES, settlements=None, due_before=now, up_to=COUNT_CAP
            )
            registered = await tx.appeals.last_number()
        age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
        return DatabaseState(
            outbox_pending=pending,
            outbox_oldest_pending_seconds=age,
            appeals_open=appeals_open,
            appeals_overdue=overdue,
            appeals_registered=registered,
        )


def _observe(task: asyncio.Task[Any]) -> None:
    """Retrieve a probe's error, so one nobody waited for does not log as unretrieved."""
    if not task.cancelled():
        task.exception()
