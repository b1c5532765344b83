"""Two instances (processes) of `appeals-bot run` on one PostgreSQL database (SPEC §15), against
the fake VK (Callback API) and Telegram (webhook) servers on 127.0.0.1.

Residents on both messengers file appeals through both instances at once, each update posted
to one instance or the other, as a load balancer would. In the middle, with updates just
acknowledged and not yet handled, one instance is killed with SIGKILL; the rest goes to the
survivor (as nginx would fail over), which also takes over the work held by the dead one (the
deadline scheduler, by the advisory lock that holds the long-poll receivers alike). Then an
administrator answers every appeal. What must hold: every appeal registered once, numbers
1..N; every resident told their number once and given the answer once; the outbox empty.

Leaner than the issue's 200 residents (RESIDENTS per messenger): the machine is shared and
the suite's time is counted; the properties do not depend on the number.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import sys
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from bot.cli import example_config_path
from tests.fakes.telegram import FakeTelegram
from tests.fakes.vk import FakeVK
from tests.test_process import REPO, clean_env, kill, toml_text, until

pytestmark = pytest.mark.timeout(240)

RESIDENTS = 6  # per messenger
GROUP = 777
ADMIN = 500  # Сергино's administrator, on Telegram
VK_SECRET = "vk-callback-secret"
TG_SECRET = "tg-webhook-secret"
STEPS = [
    "Начать",
    "Подать обращение",
    "Согласен",
    "Дороги",
    "Сергино",
    "Яма на дороге возле школы, глубокая",
    "Пропустить",
    "Пропустить",
    "Пропустить",
    "Пропустить",
    "Отправить",
]
KILL_AFTER = 5  # steps done through both instances; the sixth is cut off by the kill
ANSWER = "Яму засыпали, спасибо за обращение."
NUMBER = re.compile(r"№(\d+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Instance:
    def __init__(self, name: str, tmp_path: Path, data: dict[str, Any]) -> None:
        self.name = name
        self.port = free_port()
        self.log = tmp_path / f"{name}.log"
        self.config = tmp_path / f"{name}.toml"
        data = {**data, "web": {**data["web"], "port": self.port}}
        self.config.write_text(toml_text(data), "utf-8")
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, http: aiohttp.ClientSession) -> None:
        args = [sys.executable, "-m", "bot", "run", "--config", str(self.config)]
        with self.log.open("wb") as sink:
            self.process = await asyncio.create_subprocess_exec(
                *args, cwd=REPO, env=clean_env(), stdout=sink, stderr=asyncio.subprocess.STDOUT
            )

        async def up() -> bool:
            assert self.process is not None and self.process.returncode is None, self.text()
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{self.url}/healthz"):
                    return True
            return False

        await until(up, 30, f"instance {self.name} to listen")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def text(self) -> str:
        return self.log.read_text("utf-8", "replace")

    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeVK, FakeTelegram]]:
    vk = FakeVK(GROUP, hold_seconds=0.05)
    tg = FakeTelegram(hold_seconds=0.05)
    await vk.start()
    await tg.start()
    tg.known_chats.add(ADMIN)
    yield vk, tg
    await tg.stop()
    await vk.stop()


def config_data(postgres_url: str, vk: FakeVK, tg: FakeTelegram) -> dict[str, Any]:
    data = tomllib.loads(example_config_path().read_text("utf-8"))
    data["storage"].update(url=postgres_url, pool_size=4)
    data["web"]["port"] = 0
    data["vk"].update(
        enabled=True,
        token="vk1.a.two-instances-token-0123456789",
        group_id=GROUP,
        api_url=vk.api_url,
        mode="callback",
        callback_path="/vk/callback",
        callback_secret=VK_SECRET,
        confirmation_code="abc123",
        send_rate=0,
    )
    data["telegram"].update(
        enabled=True,
        token=tg.token,
        api_url=tg.url,
        mode="webhook",
        webhook_path="/tg/webhook",
        webhook_url="https://bot.example/tg/webhook",
        webhook_secret=TG_SECRET,
        send_rate=0,
        per_chat_rate=0,
    )
    data["delivery"].update(max_backoff_seconds=0.5, claim_seconds=3)
    data["limits"]["messages_per_minute"] = 1000
    for settlement in data["settlements"]:
        settlement["admins"] = [f"tg:{ADMIN}"] if settlement["code"] == "sergino" else []
    return data


async def test_two_instances_one_killed_every_appeal_once(
    tmp_path: Path, postgres_url: str, fakes: tuple[FakeVK, FakeTelegram]
) -> None:
    vk, tg = fakes
    data = config_data(postgres_url, vk, tg)
    first, second = Instance("first", tmp_path, data), Instance("second", tmp_path, data)
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
    try:
        await first.start(http)
        await until(
            lambda: _true("deadlines runs on this instance" in first.text()), 30, "the scheduler"
        )
        await second.start(http)
        instances = [first, second]

        async def post(target: Instance, platform: str, user: int, text: str) -> None:
            """One update as the platform sends it; if the instance is gone, to the other
            (the balancer's failover, the platform's retry)."""
            if platform == "vk":
                body = dict(vk.message_new(user, text), secret=VK_SECRET)
                path, headers = "/vk/callback", {}
            else:
                body = tg.message(user, text)
                path, headers = "/tg/webhook", {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
            for where in (target, second):
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.post(f"{where.url}{path}", json=body, headers=headers) as r:
                        if r.status == 200:
                            return
            raise AssertionError(f"no instance took {platform} update from {user}")

        def inbox(platform: str, user: int) -> list[str]:
            fake = vk if platform == "vk" else tg
            return [m.text for m in fake.messages_to(user)]

        people = [("vk", 1000 + i) for i in range(RESIDENTS)] + [
            ("tg", 2000 + i) for i in range(RESIDENTS)
        ]

        async def walk(steps: range, *, wait_last: bool = True) -> None:
            async def one(i: int, platform: str, user: int) -> None:
                for step in steps:
                    seen = len(inbox(platform, user))
                    await post(instances[(i + step) % 2], platform, user, STEPS[step])
                    if step != steps[-1] or wait_last:
                        await until(
                            lambda p=platform, u=user, n=seen: _true(len(inbox(p, u)) > n),
                            30,
                            f"a reply to {platform}:{user} at step {step}",
                        )

            await asyncio.gather(*(one(i, p, u) for i, (p, u) in enumerate(people)))

        await walk(range(KILL_AFTER))
        before = {person: len(inbox(*person)) for person in people}
        await walk(range(KILL_AFTER, KILL_AFTER + 1), wait_last=False)  # acknowledged only
        assert first.process is not None
        first.process.kill()  # kill -9 with updates in hand
        assert await asyncio.wait_for(first.process.wait(), 10) == -9
        instances = [second, second]
        # The survivor handles what the dead one acknowledged (the inbox) and takes over its
        # work (the scheduler, by its advisory lock) within seconds.
        await until(
            lambda: _true(second.text().count("deadlines runs on this instance") == 1),
            10,
            "the survivor to take over the scheduler",
        )
        for platform, user in people:
            await until(
                lambda p=platform, u=user: _true(len(inbox(p, u)) > before[(p, u)]),
                30,
                f"the reply to the acknowledged step of {platform}:{user}",
            )
        await walk(range(KILL_AFTER + 1, len(STEPS)))

        numbers: dict[tuple[str, int], int] = {}
        for platform, user in people:
            told = {int(n) for t in inbox(platform, user) for n in NUMBER.findall(t)}
            assert len(told) == 1, (platform, user, inbox(platform, user))
            numbers[(platform, user)] = told.pop()
        assert sorted(numbers.values()) == list(range(1, len(people) + 1))

        for number in sorted(numbers.values()):
            body = tg.message(ADMIN, f"/reply {number} {ANSWER}")
            headers = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
            async with http.post(f"{second.url}/tg/webhook", json=body, headers=headers) as r:
                assert r.status == 200
        for platform, user in people:
            await until(
                lambda p=platform, u=user: _true(any(ANSWER in t for t in inbox(p, u))),
                30,
                f"the answer to {platform}:{user}",
            )

        async def outbox_empty() -> bool:
            async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
                cursor = await conn.execute("SELECT count(*) FROM outbox WHERE status <> 'sent'")
                row = await cursor.fetchone()
            return row is not None and row[0] == 0

        await until(outbox_empty, 30, "every outgoing message sent")
        for platform, user in people:
            texts = inbox(platform, user)
            number = numbers[(platform, user)]
            assert sum(ANSWER in t for t in texts) == 1, texts  # the answer, exactly once
            registered = [t for t in texts if f"№{number}" in t and ANSWER not in t]
            assert len(registered) == 1, texts  # told the number exactly once
        async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
            cursor = await conn.execute("SELECT count(*), count(DISTINCT id) FROM appeals")
            assert await cursor.fetchone() == (len(people), len(people))
        assert "Traceback" not in second.text(), second.text()[-3000:]
    finally:
        for instance in (first, second):
            await kill(instance.process)
        await http.close()


async def _true(value: bool) -> bool:
    return value
