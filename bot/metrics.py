"""/metrics in Prometheus's text format, through prometheus-client (SPEC §17).

Each App has a registry of its own (not the library's global one), so several apps in one
process (the tests) keep their figures apart. Two kinds of figures:

- counters the code moves as things happen: updates handled, sends, send errors by kind,
  deliveries marked failed — by platform. They start at 0 for every enabled platform, so a
  rate is defined from the first scrape, and restart from 0 with the process (Prometheus's
  `rate()` and `increase()` expect that).
- the state, read from the database when /metrics is asked (bot/health.py, a few indexed
  queries in one short transaction): the outbox backlog and the age of its oldest row,
  appeals open by status and overdue, appeals registered; and whether each channel is
  receiving. When the database does not answer in time, `appeals_bot_database_up` is 0 and
  the figures read from it are left out rather than shown stale.

Every name begins with `appeals_bot_`; the README («Deploy», «What to monitor») lists them
with the alerts that make sense.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.channels.base import Liveness

__all__ = ["CONTENT_TYPE", "Metrics", "State"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
SEND_ERROR_KINDS = ("retryable", "final")


@dataclass(frozen=True)
class State:
    """What /metrics reads at scrape time; `database` None when the database did not
    answer in time."""

    database: DatabaseState | None
    channels: Mapping[str, Liveness] = field(default_factory=dict)


@dataclass(frozen=True)
class DatabaseState:
    outbox_pending: int
    outbox_oldest_pending_seconds: float  # 0 when nothing waits
    appeals_open: Mapping[str, int]  # by status: new, in_progress, answered
    appeals_overdue: int
    appeals_registered: int


class Metrics:
    def __init__(self, platforms: Iterable[str] = ()) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.updates_handled = Counter(
            "appeals_bot_updates_handled",
            "Updates from residents and staff handled (redeliveries and flood drops not counted)",
            ["platform"],
            registry=self.registry,
        )
        self.sends = Counter(
            "appeals_bot_sends",
            "Outgoing messages (outbox rows) sent",
            ["platform"],
            registry=self.registry,
        )
        self.send_errors = Counter(
            "appeals_bot_send_errors",
            "Send attempts that failed: retryable (tried again later) or final",
            ["platform", "kind"],
            registry=self.registry,
        )
        self.deliveries_failed = Counter(
            "appeals_bot_deliveries_failed",
            "Outgoing messages marked failed for good (moderators are told)",
            ["platform"],
            registry=self.registry,
        )
        for platform in platforms:
            self.updates_handled.labels(platform)
            self.sends.labels(platform)
            for kind in SEND_ERROR_KINDS:
                self.send_errors.labels(platform, kind)
            self.deliveries_failed.labels(platform)
        self._state = State(database=None)
        self.registry.register(_StateCollector(self))

    def send_error(self, platform: str, *, retryable: bool) -> None:
        self.send_errors.labels(platform, "retryable" if retryable else "final").inc()

    def render(self, state: State) -> bytes:
        """The text exposition with `state` as the scrape-time figures."""
        self._state = state
        return generate_latest(self.registry)

    @property
    def state(self) -> State:
        return self._state


class _StateCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterable[Metric]:
        return list(self._families(State(database=None), describe=True))

    def collect(self) -> Iterable[Metric]:
        return list(self._families(self._metrics.state, describe=False))

    @staticmethod
    def _families(state: State, *, describe: bool) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "appeals_bot_database_up", "1 if the database answered the scrape's queries in time"
        )
        up.add_metric([], 0.0 if state.database is None else 1.0)
        yield up
        receiving = GaugeMetricFamily(
            "appeals_bot_channel_receiving",
            "1 while the channel receives updates (as /healthz judges it), else 0",
            labels=["platform"],
        )
        last = GaugeMetricFamily(
            "appeals_bot_channel_last_update_age_seconds",
            "Seconds since the channel's last completed long poll or webhook",
            labels=["platform"],
        )
        for platform, liveness in state.channels.items():
            receiving.add_metric([platform], 1.0 if liveness.receiving else 0.0)
            if liveness.last_seconds_ago is not None:
                last.add_metric([platform], liveness.last_seconds_ago)
        yield receiving
        yield last
        db = state.database
        if db is None and not describe:
            return
        pending = GaugeMetricFamily(
            "appeals_bot_outbox_pending", "Outgoing messages waiting to be sent"
        )
        oldest = GaugeMetricFamily(
            "appeals_bot_outbox_oldest_pending_age_seconds",
            "Age of the oldest outgoing message still waiting to be sent (0 if none)",
        )
        appeals_open = GaugeMetricFamily(
            "appeals_bot_appeals_open",
            "Appeals not closed or rejected, by status (new, in_progress, answered)",
            labels=["status"],
        )
        overdue = GaugeMetricFamily(
            "appeals_bot_appeals_overdue",
            "Appeals waiting for an answer past their deadline",
        )
        registered = CounterMetricFamily(
            "appeals_bot_appeals_registered", "Appeals registered since the database began"
        )
        if db is not None:
            pending.add_metric([], db.outbox_pending)
            oldest.add_metric([], db.outbox_oldest_pending_seconds)
            for status, count in db.appeals_open.items():
                appeals_open.add_metric([status], count)
            overdue.add_metric([], db.appeals_overdue)
            registered.add_metric([], db.appeals_registered)
        yield from (pending, oldest, appeals_open, overdue, registered)
