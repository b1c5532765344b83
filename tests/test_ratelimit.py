"""The send pacer: an overall rate and a per-chat rate that are never exceeded, and chats
that do not wait for each other. Checked on the event loop's own clock, with the loop's
time read at each call (no wall-clock assertions on speed)."""

from __future__ import annotations

import asyncio
import itertools

from bot.ratelimit import RateLimiter


async def times_of(limiter: RateLimiter, chats: list[str]) -> list[tuple[float, str]]:
    loop = asyncio.get_running_loop()
    stamps: list[tuple[float, str]] = []

    async def call(chat: str) -> None:
        async with limiter.turn(chat):
            stamps.append((loop.time(), chat))

    await asyncio.gather(*(call(chat) for chat in chats))
    return sorted(stamps)


def max_in_window(times: list[float], window: float) -> int:
    return max(sum(1 for t in times if start <= t < start + window) for start in times)


async def test_overall_rate_is_never_exceeded() -> None:
    stamps = await times_of(RateLimiter(per_second=50), [str(i) for i in range(60)])
    times = [t for t, _ in stamps]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 1 / 50 - 0.002
    assert max_in_window(times, 1.0) <= 51


async def test_one_chat_waits_without_holding_up_the_others() -> None:
    limiter = RateLimiter(per_second=100, per_chat=5)
    stamps = await times_of(limiter, ["busy"] * 4 + [f"c{i}" for i in range(10)])
    busy = [t for t, chat in stamps if chat == "busy"]
    others = [t for t, chat in stamps if chat != "busy"]
    assert all(b - a >= 1 / 5 - 0.002 for a, b in itertools.pairwise(busy))
    assert max(others) < busy[-1]  # the other chats went in the busy chat's pauses
