"""No barrier in delivery, and no resend after a database error (SPEC §7, issue 13).

Against the fake Telegram and OK servers, with the real channels doing real HTTP:

* one chat whose send hangs for 5 s does not hold up a reply to another chat: that reply
  arrives while the slow send is still being held;
* when the database refuses to record sends (a trigger raises on the outbox), the messages
  that went out are not sent again by later passes, on Telegram and OK alike (neither has an
  idempotency key); once the database works again they are recorded.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from bot.app import App
from bot.channels.ok import OkChannel
from bot.channels.telegram import TelegramChannel
from tests.conftest import Clock
from tests.fakes.ok import FakeOK
from tests.fakes.telegram import FakeTelegram
from tests.test_ok import RESIDENT as OK_RESIDENT
from tests.test_ok import ok_config
from tests.test_telegram import tg_config

SLOW_SECONDS = 5.0
SLOW, QUICK = 4001, 4002


class SlowTelegram(FakeTelegram):
    """Telegram whose sendMessage into one chat takes SLOW_SECONDS (or until released)."""

    def __init__(self) -> None:
        super().__init__(hold_seconds=0.05)
        self.slow_chat = ""
        self.holding = 0
        self.release = asyncio.Event()

    async def _execute(
        self, method: str, fields: dict[str, str], files: dict[str, bytes]
    ) -> web.Response:
        if method == "sendMessage" and fields.get("chat_id") == self.slow_chat:
            self.holding += 1
            try:
                async with asyncio.timeout(SLOW_SECONDS):
                    await self.release.wait()
            except TimeoutError:
                pass
            finally:
                self.holding -= 1
        return await super()._execute(method, fields, files)


@pytest.fixture
async def slow_tg() -> AsyncIterator[SlowTelegram]:
    server = SlowTelegram()
    await server.start()
    yield server
    server.release.set()
    await server.stop()
    assert server.errors == []


async def test_a_slow_chat_does_not_hold_up_another(
    tmp_path: Path, slow_tg: SlowTelegram, clock: Clock
) -> None:
    config = tg_config(tmp_path, slow_tg)
    app = App(config, [TelegramChannel(config.telegram)], clock=clock)
    await app.start()
    try:
        await slow_tg.wait_polled()
        slow_tg.slow_chat = str(SLOW)
        slow_tg.message(SLOW, "Здравствуйте")
        await slow_tg.wait_for(lambda: slow_tg.holding == 1, what="the slow send in hand")

        started = time.monotonic()
        slow_tg.message(QUICK, "Здравствуйте")
        await slow_tg.wait_for(
            lambda: bool(slow_tg.messages_to(QUICK)), within=SLOW_SECONDS, what="the quick reply"
        )
        waited = time.monotonic() - started
        assert slow_tg.holding == 1, "the quick reply came only after the slow send ended"
        print(f"\nreply to another chat while one send hangs: {waited * 1000:.0f} ms")

        slow_tg.release.set()
        await app.settle()
        assert len(slow_tg.messages_to(SLOW)) == 1
        assert len(slow_tg.messages_to(QUICK)) == 1
    finally:
        await app.stop()


# --- a database error while recording sends ------------------------------------------------

REFUSE_SENT = (
    "CREATE TRIGGER refuse_sent BEFORE UPDATE OF status ON outbox WHEN NEW.status = 'sent'"
    " BEGIN SELECT RAISE(ABORT, 'injected: the disk is full'); END"
)


async def database(path: Path, sql: str) -> list[tuple[object, ...]]:
    """A statement by another connection, as a person at the sqlite3 shell would run it. In
    a thread: the bot's transaction in progress needs the loop to reach its COMMIT."""

    def run() -> list[tuple[object, ...]]:
        connection = sqlite3.connect(path, isolation_level=None, timeout=10)
        try:
            return connection.execute(sql).fetchall()
        finally:
            connection.close()

    return await asyncio.to_thread(run)


async def passes(app: App, count: int) -> None:
    """Delivery passes, each of which would resend what it wrongly thought unsent."""
    for _ in range(count):
        app.delivery.wake()
        await app.delivery.deliver_due()


async def test_a_failed_record_of_sends_resends_nothing_on_telegram(
    tmp_path: Path, clock: Clock
) -> None:
    fake = FakeTelegram(hold_seconds=0.05)
    await fake.start()
    config = tg_config(tmp_path, fake)
    db_path = config.storage.sqlite_path
    app = App(config, [TelegramChannel(config.telegram)], clock=clock)
    await app.start()
    try:
        await fake.wait_polled()
        await database(db_path, REFUSE_SENT)
        people = [5001, 5002, 5003]
        for user in people:
            fake.message(user, "Здравствуйте")
        await fake.wait_for(lambda: all(fake.messages_to(u) for u in people), what="replies")
        await passes(app, 3)
        assert await database(db_path, "SELECT count(*) FROM outbox WHERE status = 'pending'") == [
            (3,)
        ]

        await database(db_path, "DROP TRIGGER refuse_sent")
        await app.settle()
        assert Counter(m.chat_id for m in fake.sent) == dict.fromkeys(people, 1)
        assert await database(db_path, "SELECT count(*) FROM outbox WHERE status = 'sent'") == [
            (3,)
        ]
    finally:
        await app.stop()
        await fake.stop()


async def test_a_failed_record_of_sends_resends_nothing_on_ok(tmp_path: Path, clock: Clock) -> None:
    fake = FakeOK()
    await fake.start()
    config = ok_config(tmp_path, fake)
    db_path = config.storage.sqlite_path
    app = App(config, [OkChannel(config.ok)], clock=clock)
    await app.start()
    try:
        url = f"http://127.0.0.1:{app.web.port}/ok/webhook/{config.ok.webhook_secret.get_secret_value()}"
        await database(db_path, REFUSE_SENT)
        people = [OK_RESIDENT, "user:5002", "user:5003"]
        chats = [fake.chat_of(user) for user in people]
        for user in people:
            status, _ = await fake.deliver(fake.message_created(user, "Здравствуйте"), url)
            assert status == 200
        await fake.wait_for(lambda: all(fake.messages_to(c) for c in chats), what="replies")
        await passes(app, 3)
        assert await database(db_path, "SELECT count(*) FROM outbox WHERE status = 'pending'") == [
            (3,)
        ]

        await database(db_path, "DROP TRIGGER refuse_sent")
        await app.settle()
        assert Counter(m.chat_id for m in fake.sent) == dict.fromkeys(chats, 1)
        assert await database(db_path, "SELECT count(*) FROM outbox WHERE status = 'sent'") == [
            (3,)
        ]
    finally:
        await app.stop()
        await fake.stop()
