"""Several instances on one PostgreSQL database (SPEC §15), each a `PostgresDatabase` of its
own on the same schema, as two processes would have: outbox rows are claimed by one, appeal
numbers stay unique and without gaps, an event is handled once, and work that must run on one
instance at a time (long polls, scheduler, housekeeping) is taken over when its holder goes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from storage.postgres import LEADER_RETRY_SECONDS, PostgresDatabase
from tests.test_storage import make_appeal, make_resident

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


@pytest.fixture
async def pair(postgres_url: str) -> AsyncIterator[tuple[PostgresDatabase, PostgresDatabase]]:
    first = await PostgresDatabase.open(postgres_url, pool_size=4)
    second = await PostgresDatabase.open(postgres_url, pool_size=4)
    yield first, second
    await first.close()
    await second.close()


async def test_outbox_rows_are_claimed_by_one_instance_until_the_claim_expires(
    pair: tuple[PostgresDatabase, PostgresDatabase],
) -> None:
    first, second = pair
    async with first.transaction() as tx:
        ids = [await tx.outbox.add("vk", f"chat-{i}", {"text": str(i)}, NOW) for i in range(40)]
    until = NOW + timedelta(minutes=2)

    async def claim(db: PostgresDatabase) -> set[int]:
        async with db.transaction() as tx:
            return await tx.outbox.claim(ids, NOW, until)

    claims = await asyncio.gather(*(claim(db) for db in (first, second, first, second)))
    assert set().union(*claims) == set(ids)
    assert sum(len(c) for c in claims) == len(ids)  # no row claimed twice
    # The holder died: once its claim has expired, the rows are anyone's.
    async with second.transaction() as tx:
        assert await tx.outbox.claim(ids, until - timedelta(seconds=1), until) == set()
        later = until + timedelta(seconds=1)
        assert await tx.outbox.claim(ids, later, later + timedelta(minutes=2)) == set(ids)


async def test_a_chat_another_instance_holds_is_not_offered_until_its_claim_expires(
    pair: tuple[PostgresDatabase, PostgresDatabase],
) -> None:
    first, second = pair
    async with first.transaction() as tx:
        held = await tx.outbox.add("vk", "held", {"text": "1"}, NOW)
        free = await tx.outbox.add("vk", "free", {"text": "2"}, NOW)
        until = NOW + timedelta(minutes=2)
        assert await tx.outbox.claim([held], NOW, until) == {held}
    async with second.transaction() as tx:
        assert [r.id for r in await tx.outbox.due_heads(NOW, ["vk"], 10)] == [free]
        after = until + timedelta(seconds=1)
        assert [r.id for r in await tx.outbox.due_heads(after, ["vk"], 10)] == [held, free]


async def test_appeal_numbers_are_unique_and_sequential_across_instances(
    pair: tuple[PostgresDatabase, PostgresDatabase],
) -> None:
    async with pair[0].transaction() as tx:
        resident = await make_resident(tx)

    async def register(db: PostgresDatabase) -> int:
        async with db.transaction() as tx:
            return await make_appeal(tx, resident)

    numbers = await asyncio.gather(*(register(pair[i % 2]) for i in range(30)))
    assert sorted(numbers) == list(range(1, 31))


async def test_an_event_is_handled_once_across_instances(
    pair: tuple[PostgresDatabase, PostgresDatabase],
) -> None:
    async def record(db: PostgresDatabase) -> bool:
        async with db.transaction() as tx:
            return await tx.events.record_once("tg", "update-7", NOW)

    assert sorted(await asyncio.gather(*(record(pair[i % 2]) for i in range(6)))) == [
        False,
        False,
        False,
        False,
        False,
        True,
    ]


async def test_exclusive_work_runs_on_one_instance_and_is_taken_over(
    pair: tuple[PostgresDatabase, PostgresDatabase],
) -> None:
    first, second = pair
    running: list[str] = []
    started = {name: asyncio.Event() for name in ("first", "second")}

    def work(name: str) -> Callable[[], Coroutine[Any, Any, None]]:
        async def run() -> None:
            running.append(name)
            started[name].set()
            await asyncio.Event().wait()

        return run

    holder = asyncio.create_task(first.exclusively("vk.longpoll.ts", work("first")))
    await asyncio.wait_for(started["first"].wait(), 10)
    waiter = asyncio.create_task(second.exclusively("vk.longpoll.ts", work("second")))
    await asyncio.sleep(LEADER_RETRY_SECONDS + 0.5)  # a full retry of the waiter, refused
    assert running == ["first"]
    holder.cancel()  # its instance goes: the lock's connection closes
    await asyncio.wait_for(started["second"].wait(), LEADER_RETRY_SECONDS + 7)
    assert running == ["first", "second"]
    waiter.cancel()
    await asyncio.gather(holder, waiter, return_exceptions=True)
