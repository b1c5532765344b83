"""/metrics in Prometheus's text format, through prometheus-client (SPEC §17).

Each App has a registry of its own (not the library's global one), so several apps in one
process (the tests) keep their figures apart. Two kinds of figures:

- counters the code moves as things happen: updates handled, sends, send errors by kind,
  deliveries marked failed — by platform. They start at 0 for every enabled platform, so a
  rate is defined from the first scrape, and restart from 0 with the process (Prometheus's
  `rate()` and `increase()` expect that). They are plain integers until a scrape turns them
  into metric families: counting costs an addition, and prometheus-client (with the HTTP
  and e-mail modules it loads) is imported only by a process that is scraped, not by the
  demo or the command line.
- the state, read from the database when /metrics is asked (bot/health.py, a few indexed
  queries in one short transaction): the outbox backlog and the age of its oldest row,
  appeals open by status and overdue, appeals registered; and whether each channel is
  receiving. When the database does not answer in time, `appeals_bot_database_up` is 0 and
  the figures read from it are left out rather than shown stale.

Every name begins with `appeals_bot_`; the README («Deploy», «Health and metrics») lists
them with the alerts that make sense.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.channels.base import Liveness

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import Metric

__all__ = ["DatabaseState", "Metrics", "State"]

SEND_ERROR_KINDS = ("retryable", "final")


@dataclass(frozen=True)
class DatabaseState:
    outbox_pending: int
    outbox_oldest_pending_seconds: float  # 0 when nothing waits
    appeals_open: Mapping[str, int]  # by status: new, in_progress, answered
    appeals_overdue: int
    appeals_registered: int


@dataclass(frozen=True)
class State:
    """What /metrics reads at scrape time; `database` None when the database did not
    answer in time."""

    database: DatabaseState | None
    channels: Mapping[str, Liveness] = field(default_factory=dict)


class Metrics:
    def __init__(self, platforms: Iterable[str] = ()) -> None:
        self.updates_handled: Counter[str] = Counter()
        self.sends: Counter[str] = Counter()
        self.send_errors: Counter[tuple[str, str]] = Counter()  # (platform, kind)
        self.deliveries_failed: Counter[str] = Counter()
        for platform in platforms:  # present from the start, at 0
            self.updates_handled[platform] = 0
            self.sends[platform] = 0
            for kind in SEND_ERROR_KINDS:
                self.send_errors[platform, kind] = 0
            self.deliveries_failed[platform] = 0
        self._state = State(database=None)
        self._registry: CollectorRegistry | None = None

    def handled(self, platform: str) -> None:
        self.updates_handled[platform] += 1

    def sent(self, platform: str) -> None:
        self.sends[platform] += 1

    def send_error(self, platform: str, *, retryable: bool) -> None:
        self.send_errors[platform, "retryable" if retryable else "final"] += 1

    def delivery_failed(self, platform: str) -> None:
        self.deliveries_failed[platform] += 1

    @property
    def state(self) -> State:
        """The scrape-time figures of the latest scrape."""
        return self._state

    @property
    def registry(self) -> CollectorRegistry:
        """This app's own registry (made at the first scrape)."""
        if self._registry is None:
            self._registry = _registry(self)
        return self._registry

    def render(self, state: State) -> tuple[bytes, str]:
        """The exposition with `state` as the scrape-time figures, and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        self._state = state
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def families(self) -> Iterator[Metric]:
        """Every metric family, from the counters and the latest state."""
        from prometheus_client.core import CounterMetricFamily

        counters = (
            (
                "updates_handled",
                "Updates from residents and staff handled "
                "(redeliveries and flood drops not counted)",
                self.updates_handled,
            ),
            ("sends", "Outgoing messages (outbox rows) sent", self.sends),
            (
                "deliveries_failed",
                "Outgoing messages marked failed for good (moderators are told)",
                self.deliveries_failed,
            ),
        )
        for name, documentation, counts in counters:
            family = CounterMetricFamily(f"appeals_bot_{name}", documentation, labels=["platform"])
            for platform, count in sorted(counts.items()):
                family.add_metric([platform], count)
            yield family
        errors = CounterMetricFamily(
            "appeals_bot_send_errors",
            "Send attempts that failed: retryable (tried again later) or final",
            labels=["platform", "kind"],
        )
        for (platform, kind), count in sorted(self.send_errors.items()):
            errors.add_metric([platform, kind], count)
        yield errors
        yield from _state_families(self._state)


def _registry(metrics: Metrics) -> CollectorRegistry:
    from prometheus_client import CollectorRegistry
    from prometheus_client.registry import Collector

    class _Collector(Collector):
        def collect(self) -> Iterable[Metric]:
            return list(metrics.families())

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector())
    return registry


def _state_families(state: State) -> Iterator[Metric]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

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
    if db is None:
        return
    pending = GaugeMetricFamily(
        "appeals_bot_outbox_pending", "Outgoing messages waiting to be sent"
    )
    pending.add_metric([], db.outbox_pending)
    oldest = GaugeMetricFamily(
        "appeals_bot_outbox_oldest_pending_age_seconds",
        "Age of the oldest outgoing message still waiting to be sent (0 if none)",
    )
    oldest.add_metric([], db.outbox_oldest_pending_seconds)
    appeals_open = GaugeMetricFamily(
        "appeals_bot_appeals_open",
        "Appeals not closed or rejected, by status (new, in_progress, answered)",
        labels=["status"],
    )
    for status, count in db.appeals_open.items():
        appeals_open.add_metric([status], count)
    overdue = GaugeMetricFamily(
        "appeals_bot_appeals_overdue", "Appeals waiting for an answer past their deadline"
    )
    overdue.add_metric([], db.appeals_overdue)
    registered = CounterMetricFamily(
        "appeals_bot_appeals_registered", "Appeals registered since the database began"
    )
    registered.add_metric([], db.appeals_registered)
    yield from (pending, oldest, appeals_open, overdue, registered)
