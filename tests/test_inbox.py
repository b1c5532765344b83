"""The inbox (bot/inbox.py): what a webhook accepted is on disk before the 200, a platform's
retry is recognised at the door, the inbox is bounded, and a row that cannot be handled
never stops the worker. Against the fake VK server, through the Callback API."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.app import App
from bot.channels.vk import VkChannel
from tests.conftest import Clock
from tests.fakes.vk import FakeVK
from tests.test_vk import GROUP, vk_config

SECRET = "inbox-s3cret"


class Callback:
    def __init__(self, app: App, fake: FakeVK) -> None:
        self.app = app
        self.fake = fake
        self.url = f"http://127.0.0.1:{app.web.port}/vk/callback"
        self.db_path = app.config.storage.sqlite_path

    def update(self, user: int, text: str = "Здравствуйте") -> dict[str, Any]:
        return {**self.fake.message_new(user, text), "group_id": GROUP, "secret": SECRET}

    async def post(self, body: dict[str, Any]) -> int:
        async with (
            aiohttp.ClientSession() as http,
            http.post(self.url, json=body) as response,
        ):
            return response.status

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        connection = sqlite3.connect(self.db_path, isolation_level=None, timeout=10)
        try:
            return connection.execute(sql).fetchall()
        finally:
            connection.close()


@pytest.fixture
async def fake() -> AsyncIterator[FakeVK]:
    server = FakeVK(GROUP, hold_seconds=0.05)
    await server.start()
    yield server
    await server.stop()
    assert server.errors == []


async def started(tmp_path: Path, fake: FakeVK, clock: Clock, **web: Any) -> Callback:
    config = vk_config(
        tmp_path, fake, mode="callback", callback_secret=SECRET, confirmation_code="c0de"
    )
    config = config.model_copy(update={"web": config.web.model_copy(update=web)})
    app = App(config, [VkChannel(config.vk)], clock=clock)
    await app.start()
    return Callback(app, fake)


async def test_a_retried_webhook_is_recognised_at_the_door(
    tmp_path: Path, fake: FakeVK, clock: Clock
) -> None:
    vk = await started(tmp_path, fake, clock)
    try:
        update = vk.update(8001)
        assert [await vk.post(update) for _ in range(3)] == [200, 200, 200]
        await vk.app.settle()
        assert vk.rows("SELECT count(*), count(done_at) FROM inbox") == [(1, 1)]
        assert len(fake.messages_to(8001)) == 1
    finally:
        await vk.app.stop()


async def test_a_full_inbox_answers_503_and_the_platform_retries(
    tmp_path: Path, fake: FakeVK, clock: Clock
) -> None:
    vk = await started(tmp_path, fake, clock, inbox_limit=2)
    try:
        await vk.app.inbox.stop()  # nothing is handled for a while: the inbox fills up
        statuses = [await vk.post(vk.update(8100 + n)) for n in range(3)]
        assert statuses == [200, 200, 503]
        assert vk.rows("SELECT count(*) FROM inbox") == [(2,)]

        vk.app.inbox.start()
        await vk.app.settle()
        assert await vk.post(vk.update(8102)) == 200  # VK's retry of the refused one
        await vk.app.settle()
        assert all(len(fake.messages_to(8100 + n)) == 1 for n in range(3))
    finally:
        await vk.app.stop()


async def test_a_row_that_cannot_be_handled_does_not_stop_the_worker(
    tmp_path: Path, fake: FakeVK, clock: Clock
) -> None:
    vk = await started(tmp_path, fake, clock)
    try:
        await vk.app.inbox.stop()
        # A row no handler can read (written by hand: the door accepts only JSON).
        await asyncio.to_thread(
            vk.rows,
            "INSERT INTO inbox (platform, sender, body, received_at)"
            " VALUES ('vk', '8201', '{not json', '2026-03-02T06:00:00.000000Z')",
        )
        vk.app.inbox.start()
        assert await vk.post(vk.update(8202)) == 200
        await vk.app.settle()
        assert len(fake.messages_to(8202)) == 1
        assert vk.rows("SELECT count(*) FROM inbox WHERE done_at IS NULL") == [(0,)]
    finally:
        await vk.app.stop()


async def test_an_id_the_database_cannot_store_is_no_500(
    tmp_path: Path, fake: FakeVK, clock: Clock
) -> None:
    """Found by the webhook fuzzer: an event id with a lone surrogate (JSON "\\ud800") could
    not be written to the inbox, and the webhook answered 500."""
    vk = await started(tmp_path, fake, clock)
    try:
        update = vk.update(8301)
        update["event_id"] = "\ud800"
        assert await vk.post(update) == 200
        await vk.app.settle()
        assert len(fake.messages_to(8301)) == 1
    finally:
        await vk.app.stop()
