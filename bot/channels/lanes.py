"""Updates that arrive together are handled together: one person's in the order they came,
different people's at the same time, so their database work shares commits (storage/db.py)
instead of each update waiting for its own fsync before the next one starts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import TypeVar

U = TypeVar("U")

MAX_BATCH = 100  # updates taken from a webhook queue at once


async def in_sender_order(
    updates: Sequence[U],
    sender: Callable[[U], Hashable],
    handle: Callable[[U], Awaitable[None]],
) -> None:
    """Handle every update; returns when all are handled. Updates whose sender cannot be
    told (`sender` raises, or gives None or something unhashable) share one lane."""
    lanes: dict[Hashable, list[U]] = {}
    for update in updates:
        try:
            key = sender(update)
            hash(key)
        except Exception:  # a malformed update: its handler will say so
            key = None
        lanes.setdefault(key, []).append(update)

    async def lane(items: list[U]) -> None:
        for item in items:
            await handle(item)

    if len(lanes) <= 1:
        await lane(list(updates))
        return
    # Every lane runs to its end before the caller hears of a failure (and, say, polls the
    # same updates again): no lane is left running on its own.
    results = await asyncio.gather(
        *(lane(items) for items in lanes.values()), return_exceptions=True
    )
    for result in results:
        if isinstance(result, BaseException):
            raise result


async def drain(
    queue: asyncio.Queue[U],
    sender: Callable[[U], Hashable],
    handle: Callable[[U], Awaitable[None]],
) -> None:
    """Serve a webhook queue for ever: whatever has queued up meanwhile goes as one batch."""
    while True:
        batch = [await queue.get()]
        while len(batch) < MAX_BATCH and not queue.empty():
            batch.append(queue.get_nowait())
        await in_sender_order(batch, sender, handle)
