"""Pacing sends to a messenger's documented limits (SPEC §7, §10 send_rate/per_chat_rate):
calls are spaced evenly, never in bursts, so that a queue of 500 answers never trips
flood control (VK error 6/9, Telegram 429)."""

from __future__ import annotations

import asyncio
from bisect import bisect_left, insort
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

MAX_CHATS_TRACKED = 50_000
EPSILON = 1e-9
# Calls leave 5 % further apart than the limit asks: network jitter can bring two calls
# closer together on the way, and the platform counts them when they arrive.
SAFETY_MARGIN = 1.05


class RateLimiter:
    """At most `per_second` calls per second overall (any two at least 1/per_second apart)
    and at most `per_chat` per second into one chat; 0 means no limit.

    Each caller reserves a time slot without awaiting in between, so concurrent callers
    never share one; a call waiting for its chat's turn does not hold up calls to other
    chats (they fill the free slots before it)."""

    def __init__(self, per_second: float, per_chat: float = 0.0) -> None:
        self._interval = SAFETY_MARGIN / per_second if per_second > 0 else 0.0
        self._chat_interval = SAFETY_MARGIN / per_chat if per_chat > 0 else 0.0
        self._slots: list[float] = []  # reserved send times, sorted
        self._next_in_chat: OrderedDict[str, float] = OrderedDict()

    @asynccontextmanager
    async def turn(self, chat_id: str) -> AsyncIterator[None]:
        """Wait for this call's turn, make the call in the block. The chat's next turn is
        counted from when the call ends: the platform counts calls when they arrive, and
        under load one may arrive late while the next arrives early."""
        await self.acquire(chat_id)
        try:
            yield
        finally:
            if self._chat_interval:
                done = asyncio.get_running_loop().time() + self._chat_interval
                if self._next_in_chat.get(chat_id, 0.0) < done:
                    self._next_in_chat[chat_id] = done

    async def acquire(self, chat_id: str) -> None:
        """Wait for this call's turn."""
        if not self._interval and not self._chat_interval:
            return
        now = asyncio.get_running_loop().time()
        earliest = now
        if self._chat_interval:
            earliest = max(now, self._next_in_chat.get(chat_id, 0.0))
        slot = self._reserve(earliest, now)
        if self._chat_interval:
            self._next_in_chat[chat_id] = slot + self._chat_interval
            self._next_in_chat.move_to_end(chat_id)
            while len(self._next_in_chat) > MAX_CHATS_TRACKED:
                self._next_in_chat.popitem(last=False)
        if slot > now:
            await asyncio.sleep(slot - now)

    def _reserve(self, earliest: float, now: float) -> float:
        """The first time from `earliest` at least one interval away from every reserved
        slot, reserved."""
        if not self._interval:
            return earliest
        slots = self._slots
        stale = bisect_left(slots, now - self._interval)
        del slots[:stale]
        slot = earliest
        index = bisect_left(slots, slot - self._interval + EPSILON)
        while index < len(slots) and slots[index] < slot + self._interval - EPSILON:
            slot = max(slot, slots[index] + self._interval)
            index += 1
        insort(slots, slot)
        return slot
