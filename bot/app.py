"""The application's lifecycle: open the database, start the engine, the delivery worker,
the channels and the housekeeping; stop them in the order SPEC §7 asks for."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable, Sequence
from datetime import timedelta

from loguru import logger

from bot.channels.base import Channel, Runtime
from bot.channels.runtime import limiter_key
from bot.config import Config
from bot.dashboard import Dashboard
from bot.delivery import DeliveryWorker
from bot.health import Monitor
from bot.inbox import Inbox, IntakeClosed
from bot.metrics import Metrics
from bot.ratelimit import RateLimiter
from bot.scheduler import DeadlineScheduler
from bot.settings import handler_settings
from bot.web import WebServer
from handlers.engine import Clock, Engine, utc_now
from handlers.messages import Incoming
from storage.db import Store, open_store
from storage.staff import ADMIN, MODERATOR

HOUSEKEEPING_SECONDS = 3600.0
DEFAULT_GRACE_SECONDS = 10.0
RETENTION_SWEEPS = 100  # short transactions per housekeeping round, at most


def limiters(config: Config) -> dict[str, RateLimiter]:
    """Each messenger's send pacing from [vk], [telegram], [ok] and [max]
    send_rate/per_chat_rate, one per token: every community (bot) of a messenger has its
    own, and the platform counts each token apart (SPEC §14)."""
    rates = {
        "vk": (config.vk.send_rate, 0.0),
        "tg": (config.telegram.send_rate, config.telegram.per_chat_rate),
        "ok": (config.ok.send_rate, 0.0),
        "max": (config.max.send_rate, config.max.per_chat_rate),
    }
    found = {platform: RateLimiter(*rate) for platform, rate in rates.items()}
    for community in config.communities():
        if community.key:
            key = limiter_key(community.platform, community.key)
            found[key] = RateLimiter(*rates[community.platform])
    return found


def staff_from_config(config: Config) -> list[tuple[str, str, str]]:
    """(identity, role, settlement) rows that the configuration names."""
    rows = [(identity, MODERATOR, "") for identity in config.moderators.ids]
    rows += [(identity, ADMIN, s.code) for s in config.settlements for identity in s.admins]
    return rows


class App:
    def __init__(
        self, config: Config, channels: Sequence[Channel], *, clock: Clock = utc_now
    ) -> None:
        self.config = config
        self.channels = {channel.platform: channel for channel in channels}
        self.clock = clock
        self._db: Store | None = None
        self._engine: Engine | None = None
        self._delivery: DeliveryWorker | None = None
        self._inflight: set[asyncio.Task[bool]] = set()
        self._housekeeping: asyncio.Task[None] | None = None
        self._scheduler: DeadlineScheduler | None = None
        self._web: WebServer | None = None
        self._inbox: Inbox | None = None
        self._monitor: Monitor | None = None
        self._accepting = False
        self.metrics = Metrics(self.channels)

    @property
    def db(self) -> Store:
        assert self._db is not None, "app is not started"
        return self._db

    @property
    def web(self) -> WebServer:
        assert self._web is not None, "app is not started"
        return self._web

    @property
    def monitor(self) -> Monitor:
        assert self._monitor is not None, "app is not started"
        return self._monitor

    @property
    def inbox(self) -> Inbox:
        assert self._inbox is not None, "app is not started"
        return self._inbox

    @property
    def delivery(self) -> DeliveryWorker:
        assert self._delivery is not None, "app is not started"
        return self._delivery

    @property
    def scheduler(self) -> DeadlineScheduler:
        assert self._scheduler is not None, "app is not started"
        return self._scheduler

    async def start(self) -> None:
        storage = self.config.storage
        self._db = await open_store(storage.url, pool_size=storage.pool_size)
        self._delivery = DeliveryWorker(
            self._db,
            self.channels,
            max_attempts=self.config.delivery.max_attempts,
            max_backoff_seconds=self.config.delivery.max_backoff_seconds,
            claim_seconds=self.config.delivery.claim_seconds,
            clock=self.clock,
            metrics=self.metrics,
        )
        self._engine = Engine(
            self._db,
            handler_settings(self.config),
            clock=self.clock,
            on_outbox=self._delivery.wake,
            unflooded=[c.platform for c in self.channels.values() if not c.flood_control],
        )
        async with self._db.transaction() as tx:
            await tx.staff.seed(staff_from_config(self.config), self.clock())
        self._delivery.start()
        self._scheduler = DeadlineScheduler(
            self._db, self._engine.settings, clock=self.clock, on_outbox=self._delivery.wake
        )
        self._scheduler.start()
        # One instance at a time prunes and erases (SPEC §15).
        self._housekeeping = asyncio.create_task(
            self._db.exclusively("housekeeping", self._housekeep), name="housekeeping"
        )
        self._accepting = True
        self._monitor = Monitor(
            self._db,
            self.channels,
            self.metrics,
            self.clock,
            poll_limit=self.config.web.health_poll_seconds,
        )
        self._web = WebServer(
            self.config.web.host,
            self.config.web.port,
            serve=self.config.web.serve,
            health=self._monitor.health,
            metrics=self._monitor.metrics_text,
        )
        self._inbox = Inbox(self._db, self.clock, self.config.web.inbox_limit)
        runtime = Runtime(
            self.intake,
            self._engine.admit,
            self._db,
            self._web,
            self.clock,
            self._inbox,
            self.channels,
            limiters(self.config),
        )
        if self.config.dashboard.enabled:
            dashboard = Dashboard(
                self._db,
                self._engine,
                public_url=self.config.web.public_url,
                session_hours=self.config.dashboard.session_hours,
                fetch_photo=runtime.fetch_photo,
            )
            self._web.mount("/dashboard", dashboard.app())
        for channel in self.channels.values():
            await channel.start(runtime)
            logger.info("channel started platform={}", channel.platform)
        self._inbox.start()  # what webhooks accepted before a stop or a crash goes first
        if self._web.needed:
            await self._web.start()
        # What start-up made (imported libraries, their schemas, the config) lives as long as
        # the process: out of the collector's sight, a full collection no longer walks it
        # and holds the loop for tens of milliseconds (bench listings, the mixed run).
        gc.freeze()
        logger.info(
            "appeals-bot started: database {}, channels {}",
            storage.described,
            ", ".join(self.channels) or "none",
        )

    async def intake(self, message: Incoming, *, inbox_id: int | None = None) -> None:
        """Where channels hand in updates. The handling runs as its own task so that a
        channel being stopped never cuts an update off in the middle of its transaction.
        Raises IntakeClosed once the app stops: the caller must not count the update as
        handled (a long poll must not move its position past it)."""
        if not self._accepting or self._engine is None:
            logger.warning("update refused while stopping platform={}", message.platform)
            raise IntakeClosed
        task = asyncio.create_task(self._engine.handle(message, inbox_id=inbox_id))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        task.add_done_callback(self._count_handled(message.platform))
        await asyncio.shield(task)

    def _count_handled(self, platform: str) -> Callable[[asyncio.Task[bool]], None]:
        def count(task: asyncio.Task[bool]) -> None:
            if not task.cancelled() and task.exception() is None and task.result():
                self.metrics.handled(platform)

        return count

    async def settle(self) -> None:
        """Wait until every update in hand (the inbox's included) is handled and every due
        reply is sent."""
        if self._inbox is not None:
            await self._inbox.settle()
        while self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        await self.delivery.drain()

    async def stop(self, grace_seconds: float = DEFAULT_GRACE_SECONDS) -> None:
        """Stop taking updates, finish those in hand, flush what can be sent within the
        grace period, close the database. Whatever is not sent stays in the outbox."""
        logger.info("stopping: no new updates are taken")
        # Receivers first, while the intake is still open: an update fetched by a long poll
        # is either handled or left before the saved position, never refused and skipped.
        if self._web is not None:
            await self._web.stop()  # webhooks: nothing new is accepted
        if self._inbox is not None:
            await self._inbox.stop()  # what is not in hand waits in the inbox
        await asyncio.gather(*(self._stop_channel(c) for c in self.channels.values()))
        self._accepting = False
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
        if self._scheduler is not None:
            await self._scheduler.stop()  # before the flush: its last messages go out too
        if self._delivery is not None:
            try:
                async with asyncio.timeout(grace_seconds):
                    await self.settle()
            except TimeoutError:
                logger.warning("stopping with messages still queued; they are sent at next start")
            await self._delivery.stop()
        if self._monitor is not None:
            await self._monitor.close()
        if self._db is not None:
            await self._db.close()
            self._db = None
        gc.unfreeze()  # what the app held may go now (tests start many apps in one process)
        logger.info("appeals-bot stopped")

    @staticmethod
    async def _stop_channel(channel: Channel) -> None:
        try:
            await channel.stop()
        except Exception:
            logger.exception("channel did not stop cleanly platform={}", channel.platform)

    async def purge_expired_drafts(self) -> int:
        cutoff = self.clock() - timedelta(days=self.config.limits.draft_ttl_days)
        async with self.db.transaction() as tx:
            purged = await tx.drafts.purge_older_than(cutoff)
        if purged:
            logger.info("expired drafts dropped: {}", purged)
        return purged

    async def apply_retention(self) -> dict[str, int]:
        """[retention] (SPEC §7): processed event ids and handled inbox rows older than
        `events_days`, sent outbox rows older than `sent_days`, and the personal data of
        appeals closed more than `personal_data_years` ago. In short transactions, so the
        updates of residents are never held up for long."""
        retention = self.config.retention
        now = self.clock()
        events = now - timedelta(days=retention.events_days)
        sent = now - timedelta(days=retention.sent_days)
        archived = now - timedelta(days=round(365.25 * retention.personal_data_years))
        done: dict[str, int] = {"events": 0, "inbox": 0, "sent": 0, "erased": 0}
        for _ in range(RETENTION_SWEEPS):
            async with self.db.transaction() as tx:
                swept = {
                    "events": await tx.retention.prune_events(events),
                    "inbox": await tx.retention.prune_inbox(events),
                    "sent": await tx.retention.prune_sent(sent),
                    "erased": await tx.retention.erase_archived(archived, now),
                }
            for key, count in swept.items():
                done[key] += count
            if not any(swept.values()):
                break
        if any(done.values()):
            logger.info(
                "retention: {} event ids, {} inbox rows, {} sent messages pruned; "
                "personal data of {} archived appeals erased",
                done["events"],
                done["inbox"],
                done["sent"],
                done["erased"],
            )
        return done

    async def prune_dashboard(self) -> int:
        """Expired sign-in links and dashboard sessions (SPEC §16)."""
        async with self.db.transaction() as tx:
            return await tx.dashboard.prune(self.clock())

    async def _housekeep(self) -> None:
        while True:
            for chore in (self.purge_expired_drafts, self.apply_retention, self.prune_dashboard):
                try:
                    await chore()
                except Exception:
                    logger.exception("housekeeping failed: {}", chore.__name__)
            await asyncio.sleep(HOUSEKEEPING_SECONDS)
