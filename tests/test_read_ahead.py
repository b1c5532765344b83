"""Long reads do not hold the writer (issue 15): `/stats` reads its figures on the read-only
connection before its transaction, so residents' steps go on while a year is counted."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tests.conftest import Harness, Person
from tests.flows import file_appeal


@pytest.fixture
def resident(office: Harness) -> Person:
    return office.person("1001", "Иван Петров", platform="vk")


async def test_residents_are_answered_while_stats_are_counted(
    office: Harness, resident: Person, moderator: Person
) -> None:
    await file_appeal(resident)
    db = office.app.db
    async with db.read():
        pass  # the read-only connection exists from here: hold its figures query
    assert db._reader is not None
    loop = asyncio.get_running_loop()
    counting = asyncio.Event()
    release = threading.Event()

    def hold_figures(sql: str) -> None:  # in aiosqlite's thread of the read-only connection
        if "FROM appeals INDEXED BY appeals_figures" in sql:
            loop.call_soon_threadsafe(counting.set)
            release.wait(10)

    await db._reader.aio.set_trace_callback(hold_figures)
    try:
        moderator.replies()
        resident.replies()
        # A channel hands an update in and waits for it to be handled: in a task.
        stats = asyncio.create_task(moderator.channel.receive(moderator.user_id, "/stats"))
        await asyncio.wait_for(counting.wait(), 10)

        await asyncio.wait_for(resident.channel.receive(resident.user_id, "Мои обращения"), 10)
        await office.app.delivery.drain()
        assert resident.replies()  # answered while the figures are still being read
        assert not stats.done() and moderator.replies() == []
    finally:
        release.set()
    await stats
    await office.app.settle()
    [stats] = moderator.replies()
    assert stats.text.startswith("Обращения с") and ": 1\n" in stats.text


async def test_stats_from_a_resident_counts_nothing(office: Harness, resident: Person) -> None:
    """A resident typing /stats costs no read of a year's figures, ahead or not."""
    db = office.app.db
    async with db.read():
        pass
    assert db._reader is not None
    statements: list[str] = []
    await db._reader.aio.set_trace_callback(statements.append)
    await db._conn.aio.set_trace_callback(statements.append)
    await resident.say("/stats")
    assert statements and not any("appeals_figures" in sql for sql in statements)
