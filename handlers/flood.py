"""Flood control (SPEC §12): over `limits.messages_per_minute` from one identity gets one
polite warning, then its messages are dropped for a cool-down — before any database work,
so a flood from one person costs the others nothing. Staff are exempt."""

from __future__ import annotations

from collections import OrderedDict, deque
from datetime import datetime, timedelta
from enum import Enum

WINDOW = timedelta(minutes=1)
COOLDOWN = timedelta(minutes=2)
MAX_TRACKED = 100_000  # identities remembered; the least recently seen are forgotten


class Verdict(Enum):
    PASS = "pass"
    WARN = "warn"  # the one warning: the limit was just exceeded
    DROP = "drop"  # cooling down: ignore silently


class FloodGuard:
    def __init__(self, per_minute: int) -> None:
        self._limit = per_minute
        self._recent: OrderedDict[str, deque[datetime]] = OrderedDict()
        self._cooling: dict[str, datetime] = {}
        self._exempt: set[str] = set()

    def exempt(self, identity: str) -> None:
        """Staff are never throttled."""
        self._exempt.add(identity)

    def check(self, identity: str, now: datetime) -> Verdict:
        if identity in self._exempt:
            return Verdict.PASS
        until = self._cooling.get(identity)
        if until is not None:
            if now < until:
                return Verdict.DROP
            del self._cooling[identity]
            self._recent.pop(identity, None)
        times = self._recent.pop(identity, None) or deque()
        self._recent[identity] = times  # most recently seen last
        while times and now - times[0] >= WINDOW:
            times.popleft()
        times.append(now)
        while len(self._recent) > MAX_TRACKED:
            self._recent.popitem(last=False)
        if len(times) > self._limit:
            self._cooling[identity] = now + COOLDOWN
            return Verdict.WARN
        return Verdict.PASS
