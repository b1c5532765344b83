"""The delivery worker: sends outbox rows through their channels, in order per chat,
retrying with backoff what failed for a passing reason (SPEC §7)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Mapping
from datetime import timedelta

from loguru import logger

from bot.channels.base import Channel, SendError
from handlers.delivery_failures import report_undeliverable
from handlers.engine import Clock, utc_now
from handlers.messages import Outgoing
from storage.db import Database
from storage.models import OutboxRow

BATCH = 200
IDLE_POLL_SECONDS = 1.0
FIRST_BACKOFF_SECONDS = 1.0
# One hung send must not hold up every chat: it is abandoned and retried later.
SEND_TIMEOUT_SECONDS = 120.0
DISABLED_CHECK_SECONDS = 60.0  # how often to look for rows of platforms not running here
MARK_BATCH = 32  # sent rows recorded in one commit at most (the crash-resend window)
CONCURRENT_SENDS = 32  # enough to keep VK's 20/s and Telegram's 30/s busy at ~1 s latency


class DeliveryWorker:
    def __init__(
        self,
        db: Database,
        channels: Mapping[str, Channel],
        *,
        max_attempts: int,
        max_backoff_seconds: float,
        clock: Clock = utc_now,
    ) -> None:
        self._db = db
        self._channels = channels
        self._max_attempts = max_attempts
        self._max_backoff = max_backoff_seconds
        self._clock = clock
        self._wake = asyncio.Event()
        self._pass_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._warned_platforms: set[str] = set()
        self._disabled_checked_at: float | None = None

    def wake(self) -> None:
        """Something was written to the outbox: look now instead of at the next poll."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="delivery")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def drain(self) -> None:
        """Deliver until nothing is due (rows waiting for a later retry are left waiting)."""
        while await self.deliver_due():
            pass

    async def _run(self) -> None:
        while True:
            try:
                sent = await self.deliver_due()
            except Exception:
                logger.exception("delivery pass failed; retrying shortly")
                sent = 0
            if not sent:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(IDLE_POLL_SECONDS):
                        await self._wake.wait()
                self._wake.clear()

    async def deliver_due(self) -> int:
        """One pass: the oldest due row of every chat whose channel runs; returns how many
        were handled. Only a chat's oldest row is offered, so one chat's messages keep their
        order and a chat waiting for a retry holds up nobody else."""
        async with self._pass_lock:
            waiting: list[str] = []
            check = self._disabled_check_due()
            async with self._db.transaction() as tx:
                if check:
                    waiting = await tx.outbox.platforms_waiting()
                rows = await tx.outbox.due_heads(self._clock(), list(self._channels), BATCH)
            self._warn_about_disabled(waiting)
            # Different chats in parallel (each row is the head of its own chat, so order
            # within a chat holds); the channels pace the calls to the platform's limits.
            gate = asyncio.Semaphore(CONCURRENT_SENDS)
            delivered: list[tuple[OutboxRow, list[str]]] = []

            async def send(row: OutboxRow) -> None:
                async with gate:
                    message_ids = await self._send(self._channels[row.platform], row)
                if message_ids is not None:
                    delivered.append((row, message_ids))
                    if len(delivered) >= MARK_BATCH:
                        await self._mark_sent(delivered)

            await asyncio.gather(*(send(row) for row in rows))
            await self._mark_sent(delivered)
            return len(rows)

    async def _mark_sent(self, delivered: list[tuple[OutboxRow, list[str]]]) -> None:
        """Record sent rows, many in one commit (one fsync for a whole group). Always
        before the next pass reads the outbox, so nothing sent is offered again."""
        if not delivered:
            return
        batch = delivered[:]
        delivered.clear()
        async with self._db.transaction() as tx:
            for row, message_ids in batch:
                await tx.outbox.mark_sent(row, message_ids, self._clock())

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
        for platform in platforms:
            if platform not in self._channels and platform not in self._warned_platforms:
                self._warned_platforms.add(platform)
                logger.warning(
                    "outbox has messages for platform={} but its channel is not enabled; "
                    "they wait until it is",
                    platform,
                )

    async def _send(self, channel: Channel, row: OutboxRow) -> list[str] | None:
        """Send one row; its message ids, or None if it failed (and was recorded so)."""
        try:
            message = Outgoing.from_body(
                row.platform, row.chat_id, json.loads(row.body), row.appeal_number, row.id
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
        logger.debug(
            "sent outbox={} platform={} appeal={}", row.id, row.platform, row.appeal_number
        )
        return message_ids

    async def _failed(
        self, row: OutboxRow, reason: str, retryable: bool, retry_after: float | None
    ) -> None:
        attempts = row.attempts + 1
        appeal = f"№{row.appeal_number}" if row.appeal_number else "-"
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
                logger.error(
                    "send failed for good platform={} appeal {} outbox={} attempts={}: {}",
                    row.platform,
                    appeal,
                    row.id,
                    attempts,
                    reason,
                )

    def backoff(self, attempts: int, retry_after: float | None) -> float:
        """About 1 s doubling per attempt, capped, with ±20 % jitter; at least `retry_after`."""
        base = min(self._max_backoff, FIRST_BACKOFF_SECONDS * 2 ** (attempts - 1))
        delay = base * random.uniform(0.8, 1.2)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return float(min(delay, max(self._max_backoff, retry_after or 0.0)))
