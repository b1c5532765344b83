"""bot/channels/lanes.py: a batch of updates, one person's in order, different people's at
the same time."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.channels.lanes import drain, in_sender_order


def sender(update: dict[str, Any]) -> Any:
    return update["from"]


async def test_one_persons_updates_keep_their_order_and_people_do_not_wait_for_each_other() -> None:
    b_started = asyncio.Event()
    done: list[str] = []

    async def handle(update: dict[str, Any]) -> None:
        if update["text"] == "a1":
            # Only returns if b's lane runs meanwhile: lanes are concurrent.
            await asyncio.wait_for(b_started.wait(), 5)
        if update["from"] == "b":
            b_started.set()
        await asyncio.sleep(0)
        done.append(update["text"])

    updates = [
        {"from": "a", "text": "a1"},
        {"from": "b", "text": "b1"},
        {"from": "a", "text": "a2"},
        {"from": "b", "text": "b2"},
        {"from": "a", "text": "a3"},
    ]
    await in_sender_order(updates, sender, handle)
    assert sorted(done) == ["a1", "a2", "a3", "b1", "b2"]
    assert [t for t in done if t[0] == "a"] == ["a1", "a2", "a3"]
    assert [t for t in done if t[0] == "b"] == ["b1", "b2"]


async def test_updates_whose_sender_cannot_be_told_share_one_ordered_lane() -> None:
    done: list[int] = []

    async def handle(update: Any) -> None:
        await asyncio.sleep(0.001 * (5 - update["n"]))  # later ones are quicker
        done.append(update["n"])

    updates: list[Any] = [
        {"n": 0},  # no sender: KeyError
        {"n": 1, "from": ["not", "hashable"]},
        {"n": 2, "from": None},
        {"n": 3, "from": {"a": 1}},
    ]
    await in_sender_order(updates, sender, handle)
    assert done == [0, 1, 2, 3]


async def test_a_webhook_queue_is_served_in_batches_in_order_per_sender() -> None:
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    done: list[str] = []
    everything = asyncio.Event()

    async def handle(update: dict[str, Any]) -> None:
        await asyncio.sleep(0.001 if update["from"] == "a" else 0)
        done.append(update["text"])
        if len(done) == 6:
            everything.set()

    for n in range(3):
        queue.put_nowait({"from": "a", "text": f"a{n}"})
        queue.put_nowait({"from": "b", "text": f"b{n}"})
    task = asyncio.create_task(drain(queue, sender, handle))
    try:
        await asyncio.wait_for(everything.wait(), 5)
    finally:
        task.cancel()
    assert [t for t in done if t[0] == "a"] == ["a0", "a1", "a2"]
    assert [t for t in done if t[0] == "b"] == ["b0", "b1", "b2"]


async def test_a_failing_lane_is_heard_of_only_once_every_lane_has_finished() -> None:
    """The caller polls the same updates again after a failure: no lane may still be
    running on its own then."""
    done: list[str] = []

    async def handle(update: dict[str, Any]) -> None:
        if update["text"] == "a1":
            raise RuntimeError("a1 fails")
        await asyncio.sleep(0.01)
        done.append(update["text"])

    updates = [
        {"from": "a", "text": "a1"},
        {"from": "b", "text": "b1"},
        {"from": "b", "text": "b2"},
    ]
    with pytest.raises(RuntimeError, match="a1 fails"):
        await in_sender_order(updates, sender, handle)
    assert done == ["b1", "b2"]
