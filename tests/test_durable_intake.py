"""Acknowledged means durable (SPEC §7, issue 13), proven on the real process.

`python -m bot run` runs as a subprocess; the fake VK, Telegram and OK servers run in this
test's own process, so they outlive every kill of the bot.

Webhooks (VK Callback API, Telegram, OK): 300 distinct updates are posted as fast as the bot
accepts them, then the bot is killed (SIGKILL) or stopped (SIGTERM) right after the last
200. Started again, it must handle every update exactly once: one reply per update on the
fake server. Telegram and OK have no idempotency key, so a send that is in flight at a
SIGKILL may be shown twice whatever the bot does; their sends fail until the kill, so the
replies that count are all sent after the restart, and each is the trace of one handling.
VK deduplicates by random_id and keeps working throughout.

Long polls (VK, Telegram, with every channel enabled): 40 updates in one batch each, SIGTERM
while they are being handled (a lock on the database held by this test keeps the first one
in hand), restart: all 40 handled exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fakes.max import SEND_MESSAGE as MAX_SEND
from tests.fakes.max import TOKEN as MAX_TOKEN
from tests.fakes.max import FakeMax
from tests.fakes.ok import TOKEN as OK_TOKEN
from tests.fakes.ok import FakeOK
from tests.fakes.telegram import TOKEN as TG_TOKEN
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vk import FakeVK
from tests.test_process import (
    START_WITHIN,
    STOP_WITHIN,
    BotProcess,
    database,
    exited,
    until,
    write_config,
)

pytestmark = pytest.mark.timeout(300)

GROUP = 777
VK_TOKEN = "vk1.a.durable-intake-token-0123456789"
VK_SECRET = "vk-callback-secret"
TG_SECRET = "tg-webhook-secret"
OK_SECRET = "Ok-webhook_secret-1234567890"
MAX_SECRET = "max-webhook-secret"
UPDATES = 300
CONCURRENT_POSTS = 16
BATCH = 40
HANDLED_WITHIN = 60.0
FIRST_USER = 20_000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Fakes:
    """The four fake platforms, in this process."""

    def __init__(self) -> None:
        self.vk = FakeVK(GROUP, hold_seconds=0.2)
        self.tg = FakeTelegram()
        self.ok = FakeOK()
        self.max = FakeMax()

    async def start(self) -> None:
        for fake in (self.vk, self.tg, self.ok, self.max):
            await fake.start()

    async def stop(self) -> None:
        for fake in (self.vk, self.tg, self.ok, self.max):
            await fake.stop()


@pytest.fixture
async def fakes() -> AsyncIterator[Fakes]:
    servers = Fakes()
    await servers.start()
    try:
        yield servers
    finally:
        await servers.stop()


def channel_sections(fakes: Fakes, *, vk_mode: str, tg_mode: str) -> dict[str, dict[str, Any]]:
    return {
        "vk": {
            "token": VK_TOKEN,
            "group_id": GROUP,
            "api_url": fakes.vk.api_url,
            "mode": vk_mode,
            "callback_secret": VK_SECRET,
            "confirmation_code": "c0nf1rm",
            "send_rate": 0,
        },
        "telegram": {
            "token": TG_TOKEN,
            "api_url": fakes.tg.url,
            "mode": tg_mode,
            "webhook_url": "https://bot.example.ru/tg/webhook",
            "webhook_secret": TG_SECRET,
            "send_rate": 0,
            "per_chat_rate": 0,
        },
        "ok": {
            "token": OK_TOKEN,
            "api_url": fakes.ok.url,
            "webhook_url": "https://bot.example.ru/ok/webhook",
            "webhook_secret": OK_SECRET,
            "send_rate": 0,
        },
        "max": {
            "token": MAX_TOKEN,
            "api_url": fakes.max.url,
            "mode": "webhook",
            "webhook_url": "https://bot.example.ru/max/webhook",
            "webhook_secret": MAX_SECRET,
            "send_rate": 0,
            "per_chat_rate": 0,
        },
    }


def start_config(tmp_path: Path, fakes: Fakes, *, vk_mode: str, tg_mode: str) -> tuple[Path, int]:
    port = free_port()
    path = write_config(
        tmp_path, "vk:600", **channel_sections(fakes, vk_mode=vk_mode, tg_mode=tg_mode)
    )
    # Sends fail until the kill: retried every 2 s at most, not in a storm against this
    # test's own process, which serves the fakes and posts the updates.
    text = path.read_text("utf-8").replace("port = 0", f"port = {port}")
    text = text.replace("max_backoff_seconds = 0.5", "max_backoff_seconds = 2.0")
    path.write_text(text, "utf-8")
    return path, port


async def serving(http: aiohttp.ClientSession, bot: BotProcess, port: int) -> None:
    """Until the bot's web server answers /healthz."""

    async def up() -> bool:
        if not bot.running():
            raise AssertionError(f"the bot exited: {bot.log()}")
        try:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                # 503 until Telegram and OK have accepted the webhooks' addresses (issue 20):
                # the server takes webhooks either way.
                return response.status in (200, 503)
        except aiohttp.ClientError:
            return False

    await until(up, START_WITHIN, "the bot's web server")


def scalar(db_path: Path, sql: str) -> int:
    with database(db_path) as connection:
        return int(connection.execute(sql).fetchone()[0])


async def idle(db_path: Path, bot: BotProcess) -> None:
    """Until the bot has nothing left to handle or send."""

    async def done() -> bool:
        assert bot.running(), bot.log()
        inbox = scalar(db_path, "SELECT count(*) FROM inbox WHERE done_at IS NULL")
        outbox = scalar(db_path, "SELECT count(*) FROM outbox WHERE status = 'pending'")
        return inbox == 0 and outbox == 0

    await until(done, HANDLED_WITHIN, "an idle bot")


# --- webhooks -------------------------------------------------------------------------------


class Door:
    """One platform's webhook: how to post an update from a user, and whom it answered."""

    def __init__(
        self,
        url: str,
        headers: dict[str, str],
        body: Callable[[int], dict[str, Any]],
        replies: Callable[[], Counter[int]],
        fail_sends: Callable[[], None],
        heal: Callable[[], None],
    ) -> None:
        self.url = url
        self.headers = headers
        self.body = body
        self.replies = replies
        self.fail_sends = fail_sends
        self.heal = heal


def door(platform: str, fakes: Fakes, port: int) -> Door:
    base = f"http://127.0.0.1:{port}"
    if platform == "vk":
        vk = fakes.vk

        def vk_body(user: int) -> dict[str, Any]:
            update = vk.message_new(user, "Меню")
            return {**update, "group_id": GROUP, "secret": VK_SECRET}

        return Door(
            f"{base}/vk/callback",
            {},
            vk_body,
            lambda: Counter(m.peer_id for m in vk.sent),
            lambda: None,  # VK keeps answering: random_id makes a resend harmless
            lambda: None,
        )
    if platform == "tg":
        tg = fakes.tg

        def tg_fail() -> None:
            tg.fail_method("sendMessage", 500, 1_000_000)

        return Door(
            f"{base}/tg/webhook",
            {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET},
            lambda user: tg.message(user, "Меню"),
            lambda: Counter(int(m.chat_id) for m in tg.sent),
            tg_fail,
            tg._failures.clear,
        )
    if platform == "max":
        mx = fakes.max

        def max_fail() -> None:
            mx.fail_method(MAX_SEND, 500, 1_000_000)

        return Door(
            f"{base}/max/webhook",
            {"X-Max-Bot-Api-Secret": MAX_SECRET},
            lambda user: mx.message(user, "Меню", push=False),
            lambda: Counter(m.user_id for m in mx.sent),
            max_fail,
            mx.heal,
        )
    ok = fakes.ok

    def ok_fail() -> None:
        ok.fail_method("messages", 1, 1_000_000)

    chats: dict[str, int] = {}

    def ok_body(user: int) -> dict[str, Any]:
        body = ok.message_created(str(user), "Меню")
        chats[str(body["recipient"]["chat_id"])] = user
        return body

    def ok_replies() -> Counter[int]:
        return Counter(chats[m.chat_id] for m in ok.sent if m.chat_id in chats)

    return Door(
        f"{base}/ok/webhook/{OK_SECRET}", {}, ok_body, ok_replies, ok_fail, ok._failures.clear
    )


async def post_all(http: aiohttp.ClientSession, entrance: Door, users: list[int]) -> None:
    """Post one update per user, CONCURRENT_POSTS at a time; a 503 is retried, as the
    platforms do. Returns once every update got its 200."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for user in users:
        queue.put_nowait(entrance.body(user))

    async def poster() -> None:
        while not queue.empty():
            body = queue.get_nowait()
            while True:
                async with http.post(entrance.url, json=body, headers=entrance.headers) as answer:
                    if answer.status == 200:
                        break
                    assert answer.status == 503, (answer.status, await answer.text())
                await asyncio.sleep(0.05)

    await asyncio.gather(*(poster() for _ in range(CONCURRENT_POSTS)))


@pytest.mark.parametrize("stop", ["sigkill", "sigterm"])
@pytest.mark.parametrize("platform", ["vk", "tg", "ok", "max"])
async def test_every_acknowledged_webhook_is_handled_once_after_a_stop(
    tmp_path: Path, fakes: Fakes, platform: str, stop: str
) -> None:
    config, port = start_config(tmp_path, fakes, vk_mode="callback", tg_mode="webhook")
    db_path = tmp_path / "appeals.db"
    bot = BotProcess(tmp_path, config)
    entrance = door(platform, fakes, port)
    users = [FIRST_USER + n for n in range(UPDATES)]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        try:
            await bot.start()
            await serving(http, bot, port)
            entrance.fail_sends()
            await post_all(http, entrance, users)
            if stop == "sigkill":
                await bot.sigkill()
            else:
                assert await bot.sigterm(STOP_WITHIN) == 0, bot.log()
            accepted = scalar(db_path, f"SELECT count(*) FROM inbox WHERE platform = '{platform}'")
            assert accepted == UPDATES  # every 200 stood for a row on disk

            entrance.heal()
            await bot.start()

            async def answered() -> bool:
                assert bot.running(), bot.log()
                return set(entrance.replies()) >= set(users)

            await until(answered, HANDLED_WITHIN, f"a reply to each of {UPDATES} updates")
            await idle(db_path, bot)
            replies = entrance.replies()
            twice = {user: n for user, n in replies.items() if n != 1}
            assert twice == {}, f"updates handled more than once: {twice}"
            assert scalar(db_path, "SELECT count(*) FROM processed_events") == UPDATES
        finally:
            if bot.running():
                await bot.sigterm(STOP_WITHIN)


# --- long polls -----------------------------------------------------------------------------


@contextlib.contextmanager
def write_lock(db_path: Path) -> Any:
    """Hold the database's write lock: the bot's next transaction waits for it (up to its
    busy timeout), so the update it is handling stays in hand."""
    connection = sqlite3.connect(db_path, isolation_level=None, timeout=10)
    try:
        connection.execute("BEGIN IMMEDIATE")
        yield
        connection.execute("ROLLBACK")
    finally:
        connection.close()


async def test_a_stop_in_the_middle_of_a_long_poll_batch_skips_nothing(
    tmp_path: Path, fakes: Fakes
) -> None:
    config, port = start_config(tmp_path, fakes, vk_mode="longpoll", tg_mode="polling")
    db_path = tmp_path / "appeals.db"
    bot = BotProcess(tmp_path, config)
    vk_user, tg_user = 31_001, 32_001
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        try:
            await bot.start()
            await serving(http, bot, port)  # OK is enabled too: its webhook is served
            await fakes.vk.wait_for_poll(START_WITHIN)
            await fakes.tg.wait_polled(START_WITHIN)
            await fakes.ok.wait_for(lambda: bool(fakes.ok.subscriptions), START_WITHIN)

            with write_lock(db_path):
                for _ in range(BATCH):  # no await in between: each long poll takes all 40
                    fakes.vk.message_new(vk_user, "Меню")
                    fakes.tg.message(tg_user, "Меню")
                await fakes.vk.wait_delivered(BATCH)
                await fakes.tg.wait_for(lambda: fakes.tg.delivered_updates >= BATCH)
                process = bot.process
                assert process is not None
                process.send_signal(signal.SIGTERM)  # while the first updates wait in hand

                async def stopping() -> bool:
                    return "stopping:" in bot.log()

                await until(stopping, STOP_WITHIN, "the stop to begin")
                assert bot.running()  # it cannot end while an update is in hand
            assert await exited(process, STOP_WITHIN) == 0, bot.log()
            handled = scalar(db_path, "SELECT count(*) FROM processed_events")
            assert 0 < handled < 2 * BATCH, handled  # the stop came in the middle

            await bot.start()

            async def answered() -> bool:
                assert bot.running(), bot.log()
                vk_count = len(fakes.vk.messages_to(vk_user))
                tg_count = len(fakes.tg.messages_to(tg_user))
                return vk_count >= BATCH and tg_count >= BATCH

            await until(answered, HANDLED_WITHIN, "a reply to each of the 80 updates")
            await idle(db_path, bot)
            assert len(fakes.vk.messages_to(vk_user)) == BATCH
            assert len(fakes.tg.messages_to(tg_user)) == BATCH
            assert scalar(db_path, "SELECT count(*) FROM processed_events") == 2 * BATCH
        finally:
            if bot.running():
                await bot.sigterm(STOP_WITHIN)
