"""The real process (issue 7, «Tests that must exist», second bullet): `python -m bot run` as a
subprocess against the fake VK API running in a process of its own (tests/fakes/serve.py).

The bot is killed with SIGKILL in the middle of a dialogue and in the middle of a delivery,
restarted on the same database each time, and then stopped with SIGTERM. What must hold:
the dialogue resumes at the step that was acknowledged, the appeal exists once, every message
is shown to its reader exactly once (VK's random_id deduplicates a resend after a crash), and
SIGTERM ends the process with code 0 within a bounded time.

Every wait is a bounded poll for a condition; every process is killed in a `finally`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
import tomllib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.channels.vk import MAX_CHUNKS
from bot.cli import example_config_path
from handlers import texts

pytestmark = pytest.mark.timeout(240)

REPO = Path(__file__).resolve().parent.parent
GROUP = 777
RESIDENT = 1001
ADMIN = 600  # the administrator of Сергино, on VK
TOKEN = "vk1.a.process-test-token-0123456789"
START_WITHIN = 30.0  # seconds a process may take to come up (imports on a slow machine)
REPLY_WITHIN = 30.0
STOP_WITHIN = 15.0


# --- processes ----------------------------------------------------------------------------


def clean_env() -> dict[str, str]:
    """The environment without APPEALS_* leftovers, so only the written config counts."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("APPEALS_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


async def kill(process: asyncio.subprocess.Process | None) -> None:
    if process is not None and process.returncode is None:
        process.kill()
        await asyncio.wait_for(process.wait(), 10)


async def until(
    predicate: Callable[[], Awaitable[bool]], within: float, what: str, every: float = 0.05
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError(f"waited {within}s in vain for {what}")
        await asyncio.sleep(every)


async def exited(process: asyncio.subprocess.Process, within: float) -> int | None:
    """The exit code once the process ended, or None if it still runs after `within` s."""
    try:
        return await asyncio.wait_for(process.wait(), within)
    except TimeoutError:
        return None


async def spawn(args: list[str], cwd: Path, log: Path) -> asyncio.subprocess.Process:
    """A subprocess whose stdout and stderr go to `log`."""
    with log.open("wb") as sink:
        return await asyncio.create_subprocess_exec(
            *args, cwd=cwd, env=clean_env(), stdout=sink, stderr=asyncio.subprocess.STDOUT
        )


class FakeServer:
    """tests/fakes/serve.py in a subprocess, driven through its control API."""

    def __init__(self, tmp_path: Path, kind: str = "vk") -> None:
        self.tmp_path = tmp_path
        self.kind = kind
        self.process: asyncio.subprocess.Process | None = None
        self.info: dict[str, Any] = {}
        self.http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        port_file = self.tmp_path / f"fake-{self.kind}.json"
        args = [sys.executable, "-m", "tests.fakes.serve", self.kind, "--port-file", str(port_file)]
        if self.kind == "vk":
            args += ["--group-id", str(GROUP)]
        self.process = await spawn(args, REPO, self.tmp_path / f"fake-{self.kind}.log")

        async def ready() -> bool:
            assert self.process is not None
            if self.process.returncode is not None:
                raise AssertionError(f"the fake {self.kind} server exited: {self.log()}")
            return port_file.exists()

        await until(ready, START_WITHIN, f"the fake {self.kind} server")
        self.info = json.loads(port_file.read_text("utf-8"))
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    def log(self) -> str:
        return (self.tmp_path / f"fake-{self.kind}.log").read_text("utf-8", "replace")

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            if await exited(self.process, 10) is None:
                await kill(self.process)

    async def call(self, path: str, body: dict[str, Any] | None = None) -> Any:
        assert self.http is not None
        url = self.info["control"] + path
        if body is None:
            async with self.http.get(url) as response:
                assert response.status == 200, await response.text()
                return await response.json()
        async with self.http.post(url, json=body) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def state(self) -> dict[str, Any]:
        state: dict[str, Any] = await self.call("/state")
        return state


class BotProcess:
    """`python -m bot run --config …` in a subprocess, its log in a file."""

    def __init__(self, tmp_path: Path, config: Path) -> None:
        self.tmp_path = tmp_path
        self.config = config
        self.process: asyncio.subprocess.Process | None = None
        self.runs = 0

    @property
    def log_path(self) -> Path:
        return self.tmp_path / f"bot-{self.runs}.log"

    async def start(self) -> None:
        assert self.process is None or self.process.returncode is not None
        self.runs += 1
        args = [sys.executable, "-m", "bot", "run", "--config", str(self.config)]
        self.process = await spawn([*args, "--log-level", "DEBUG"], self.tmp_path, self.log_path)

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace")

    async def sigkill(self) -> None:
        assert self.running(), self.log()
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        assert await exited(self.process, 10) == -signal.SIGKILL

    async def sigterm(self, within: float) -> int | None:
        assert self.running(), self.log()
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return await exited(self.process, within)

    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None


@contextmanager
def database(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only look at the bot's SQLite file (WAL: readers never block the bot)."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        yield connection
    finally:
        connection.close()


# --- the configuration file -----------------------------------------------------------------


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def toml_text(data: dict[str, Any]) -> str:
    """Just enough TOML for the configuration: tables of scalars and arrays of tables."""
    lines: list[str] = []
    for name, section in data.items():
        if isinstance(section, list):
            for item in section:
                lines.append(f"[[{name}]]")
                lines += [f"{k} = {toml_value(v)}" for k, v in item.items()]
                lines.append("")
        else:
            lines.append(f"[{name}]")
            lines += [f"{k} = {toml_value(v)}" for k, v in section.items()]
            lines.append("")
    return "\n".join(lines)


def write_config(tmp_path: Path, admin: str, **channels: dict[str, Any]) -> Path:
    """config.toml: the example's structure, `channels` laid over their sections."""
    data = tomllib.loads(example_config_path().read_text("utf-8"))
    data["storage"]["url"] = f"sqlite:///{tmp_path / 'appeals.db'}"
    data["web"]["port"] = 0
    for name, values in channels.items():
        data[name].update(enabled=True, **values)
    data["delivery"].update(max_attempts=1000, max_backoff_seconds=0.5)  # quick retries
    data["limits"]["messages_per_minute"] = 1000  # flood control is not under test here
    for settlement in data["settlements"]:
        settlement["admins"] = [admin] if settlement["code"] == "sergino" else []
    path = tmp_path / "config.toml"
    path.write_text(toml_text(data), "utf-8")
    assert tomllib.loads(path.read_text("utf-8")) == data  # the writer is faithful
    return path


# --- people on VK, through the fake's control API -------------------------------------------


class VkUser:
    def __init__(self, fake: FakeServer, user_id: int) -> None:
        self.fake = fake
        self.user_id = user_id

    async def inbox(self) -> list[dict[str, Any]]:
        state = await self.fake.state()
        return [m for m in state["sent"] if m["peer_id"] == self.user_id]

    async def _exchange(self, push: dict[str, Any], path: str, expect: str) -> dict[str, Any]:
        """Push an update and wait for a reply holding `expect`; returns that reply."""
        seen = len(await self.inbox())
        await self.fake.call(path, push)
        found: list[dict[str, Any]] = []

        async def replied() -> bool:
            new = (await self.inbox())[seen:]
            found[:] = [m for m in new if expect in m["text"]]
            return bool(found)

        await until(replied, REPLY_WITHIN, f"a reply to {self.user_id} with {expect!r}")
        return found[-1]

    async def say(self, text: str, expect: str, payload: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"from_id": self.user_id, "text": text}
        if payload is not None:
            body["payload"] = payload
        return await self._exchange(body, "/message_new", expect)

    async def press(self, label: str, expect: str) -> dict[str, Any]:
        """A text button comes back as message_new with its payload string, a callback
        button as message_event with the payload object (as VK delivers them)."""
        for message in reversed(await self.inbox()):
            for row in (message["keyboard"] or {}).get("buttons", []):
                for button in row:
                    action = button["action"]
                    if action.get("label") != label:
                        continue
                    if action["type"] == "callback":
                        event = {"user_id": self.user_id, "payload": json.loads(action["payload"])}
                        return await self._exchange(event, "/message_event", expect)
                    return await self.say(label, expect, payload=action["payload"])
        raise AssertionError(f"no button {label!r} was shown to {self.user_id}")


# --- the test --------------------------------------------------------------------------------

FIRST_HALF = [
    ("say", "Начать", texts.GREETING.split("\n")[-1]),
    ("press", texts.NEW_APPEAL, "Вы даёте согласие?"),
    ("press", texts.AGREE, texts.ASK_CATEGORY),
    ("press", "Дороги", texts.ASK_SETTLEMENT),
    ("press", "Сергино", "Опишите проблему"),
    ("say", "Яма на дороге возле дома культуры, глубокая", "Укажите адрес или место"),
]
SECOND_HALF = [
    ("press", texts.SKIP, "Приложите фото"),  # the place step was kept across the SIGKILL
    ("press", texts.SKIP, "Как к вам обращаться?"),
    ("press", texts.KEEP_NAME, "Телефон для связи"),
    ("press", texts.SKIP, "Проверьте обращение"),
    ("press", texts.SEND, "зарегистрировано"),
]
# Passing faults of messages.send, each retried by the delivery worker (issue 7, item 1).
FAULTS: list[tuple[str, dict[str, Any]]] = [
    ("VK error 10 (internal server error)", {"error_code": 10}),
    ("VK error 6 (too many requests per second)", {"error_code": 6}),
    ("VK error 9 (flood control)", {"error_code": 9}),
    (
        "HTTP 502 with an HTML page",
        {"error_code": 0, "http_status": 502, "body": "<html><h1>502 Bad Gateway</h1></html>"},
    ),
    ("connection cut without an answer", {}),
]


async def walk(user: VkUser, steps: list[tuple[str, str, str]]) -> None:
    for action, what, expect in steps:
        if action == "say":
            payload = '{"command":"start"}' if what == "Начать" else None
            await user.say(what, expect, payload=payload)
        else:
            await user.press(what, expect)


async def test_sigkill_mid_dialogue_and_mid_delivery_then_sigterm(tmp_path: Path) -> None:
    fake = FakeServer(tmp_path, "vk")
    bot: BotProcess | None = None
    figures: dict[str, Any] = {"faults injected": 0, "kinds": [], "sigkills": 0}
    try:
        await fake.start()
        vk = {"token": TOKEN, "group_id": GROUP, "api_url": fake.info["api_url"]}
        config = write_config(tmp_path, f"vk:{ADMIN}", vk=vk)
        db_path = tmp_path / "appeals.db"
        bot = BotProcess(tmp_path, config)
        resident, admin = VkUser(fake, RESIDENT), VkUser(fake, ADMIN)

        async def polling() -> bool:
            assert bot is not None and bot.running(), bot.log() if bot else ""
            return int((await fake.state())["holding"]) > 0

        # 1. Half the dialogue, then SIGKILL: every step the bot answered was acknowledged.
        await bot.start()
        await until(polling, START_WITHIN, "the bot's first long poll")
        await walk(resident, FIRST_HALF)
        await bot.sigkill()
        figures["sigkills"] += 1
        with database(db_path) as db:
            [(step,)] = db.execute("SELECT step FROM drafts WHERE user_id = ?", (str(RESIDENT),))
        assert step == "place"

        # 2. Restart on the same database: the dialogue goes on from the place step.
        await bot.start()
        await until(polling, START_WITHIN, "the restarted bot's long poll")
        await walk(resident, SECOND_HALF)
        with database(db_path) as db:
            assert db.execute("SELECT count(*) FROM appeals").fetchone() == (1,)
            [(number, chat_id)] = db.execute("SELECT id, chat_id FROM appeals")
        assert (number, chat_id) == (1, str(RESIDENT))

        async def card_shown() -> bool:
            return any(m["text"].startswith("Новое обращение №1") for m in await admin.inbox())

        await until(card_shown, REPLY_WITHIN, "the administrator's card")

        # 3. The administrator answers while messages.send keeps failing; the resident's
        #    answer is then carried out by VK but its HTTP answer is held: SIGKILL then.
        for kind, fault in FAULTS:
            if fault:
                await fake.call("/fail", {"method": "messages.send", "times": 1, **fault})
            else:
                await fake.call("/drop", {"method": "messages.send", "times": 1})
            figures["kinds"].append(kind)
        figures["faults injected"] += len(FAULTS)
        await fake.call("/stall", {"method": "messages.send", "chat": str(RESIDENT)})
        await fake.call(
            "/message_new", {"from_id": ADMIN, "text": "/reply 1 Яму засыплем до пятницы."}
        )

        async def stalled() -> bool:
            return int((await fake.state())["stalled"]) == 1

        await until(stalled, REPLY_WITHIN * 2, "the resident's answer to be sent and held")
        state = await fake.state()
        assert [code for _, code, _ in state["answered_errors"]] == [10, 6, 9]
        answers = [m for m in await resident.inbox() if m["text"].startswith("Ответ на обращение")]
        assert len(answers) == 1  # VK shows it already…
        answer_random_id = answers[0]["random_id"]
        await bot.sigkill()  # …but the bot never learnt that it went out
        figures["sigkills"] += 1
        figures["faults injected"] += 1
        figures["kinds"].append("SIGKILL after VK carried out messages.send, before its answer")
        await fake.call("/release", {})
        with database(db_path) as db:
            pending = db.execute("SELECT count(*) FROM outbox WHERE status = 'pending'").fetchone()
        assert pending[0] >= 1  # the answer's row is still to be sent

        # 4. Restart: the pending row is sent again with the same random_id; VK shows it once.
        await bot.start()

        async def resent() -> bool:
            calls = (await fake.state())["calls"]
            again = [
                c
                for c in calls
                if c["method"] == "messages.send"
                and c.get("random_id") == str(answer_random_id)
                and c.get("peer_id") == str(RESIDENT)
            ]
            return len(again) >= 2

        await until(resent, REPLY_WITHIN, "the answer to be sent again after the restart")

        async def outbox_empty() -> bool:
            with database(db_path) as db:
                row = db.execute("SELECT count(*) FROM outbox WHERE status != 'sent'").fetchone()
            return bool(row[0] == 0)

        await until(outbox_empty, REPLY_WITHIN, "every outbox row to be sent")
        answers = [m for m in await resident.inbox() if m["text"].startswith("Ответ на обращение")]
        assert len(answers) == 1
        replied = [m for m in await admin.inbox() if m["text"] == texts.REPLIED.format(number=1)]
        assert len(replied) == 1

        # 5. SIGTERM: exit code 0 within a bounded time, and the log says it stopped.
        await until(polling, START_WITHIN, "the long poll after the last restart")
        code = await bot.sigterm(STOP_WITHIN)
        assert code == 0, bot.log()[-3000:]
        assert "appeals-bot stopped" in bot.log()

        # The figures: every outbox row shown exactly once, nothing else shown.
        state = await fake.state()
        assert state["errors"] == []  # no bug inside the fake
        with database(db_path) as db:
            keyed = db.execute("SELECT id, chat_id, status, send_key FROM outbox").fetchall()
            assert db.execute("SELECT count(*) FROM appeals").fetchone() == (1,)
        rows = [row[:3] for row in keyed]
        # VK's random_id is the row's send key * MAX_CHUNKS + chunk + 1 (bot/channels/vk.py).
        row_of_key = {row[3]: row[0] for row in keyed}

        def row_of(message: dict[str, Any]) -> int | None:
            return row_of_key.get((message["random_id"] - 1) // MAX_CHUNKS)

        by_row = Counter(row_of(m) for m in state["sent"] if m["random_id"])
        lost = [row for row in rows if row[2] != "sent" or by_row[row[0]] == 0]
        # Single-chunk messages only in this scenario: one message per row.
        duplicated = {row_id: n for row_id, n in by_row.items() if n > 1}
        unknown = [m for m in state["sent"] if row_of(m) is None]
        same_text = Counter((m["peer_id"], m["text"]) for m in state["sent"])
        repeated = {key: n for key, n in same_text.items() if n > 1}
        sends = [c for c in state["calls"] if c["method"] == "messages.send"]
        figures.update(
            {
                "outbox rows": len(rows),
                "messages shown": len(state["sent"]),
                "messages.send calls": len(sends),
                "lost": len(lost),
                "duplicated": sum(n - 1 for n in duplicated.values())
                + sum(n - 1 for n in repeated.values()),
                "appeals": 1,
            }
        )
        print(f"\nprocess test figures: {figures}")
        assert lost == [] and duplicated == {} and unknown == [] and repeated == {}
        # Every call was a fault, a new message or a resend VK recognised (at least one).
        assert len(sends) >= len(state["sent"]) + len(FAULTS) + 1
    finally:
        if bot is not None:
            await kill(bot.process)
        await fake.close()


# --- the same on Telegram, by getUpdates polling ---------------------------------------------

TG_TOKEN = "123456:TEST-token-abcdefghijklmnopqrstuvwxyz"  # the fake's default token
TG_RESIDENT = 5001
TG_ADMIN = 5002


class TgUser:
    def __init__(self, fake: FakeServer, user_id: int) -> None:
        self.fake = fake
        self.user_id = user_id

    async def inbox(self) -> list[str]:
        state = await self.fake.state()
        return [
            m["text"] or m["caption"] or "" for m in state["sent"] if m["chat_id"] == self.user_id
        ]

    async def say(self, text: str, expect: str) -> None:
        """Type `text` (a button's label presses it) and wait for a reply holding `expect`."""
        seen = len(await self.inbox())
        await self.fake.call("/message", {"user_id": self.user_id, "text": text})

        async def replied() -> bool:
            return any(expect in t for t in (await self.inbox())[seen:])

        await until(replied, REPLY_WITHIN, f"a reply to {self.user_id} with {expect!r}")


TG_FIRST_HALF = [(what, expect) for _, what, expect in FIRST_HALF]
TG_FIRST_HALF[0] = ("/start", TG_FIRST_HALF[0][1])
TG_SECOND_HALF = [(what, expect) for _, what, expect in SECOND_HALF]
TG_FAULTS: list[tuple[str, str, dict[str, Any]]] = [
    ("Telegram 429 with retry_after 1", "/fail", {"error_code": 429, "retry_after": 1}),
    ("HTTP 502 with an HTML page", "/fail", {"error_code": 502, "body": "<html>502</html>"}),
    ("connection cut without an answer", "/drop", {}),
    ("HTTP 500, an outage until healed", "/fail", {"error_code": 500, "times": 1000}),
]


async def test_telegram_polling_sigkill_mid_dialogue_and_mid_delivery(tmp_path: Path) -> None:
    fake = FakeServer(tmp_path, "telegram")
    bot: BotProcess | None = None
    figures: dict[str, Any] = {"faults injected": 0, "kinds": [], "sigkills": 0}
    try:
        await fake.start()
        telegram = {"token": TG_TOKEN, "api_url": fake.info["url"], "mode": "polling"}
        config = write_config(tmp_path, f"tg:{TG_ADMIN}", telegram=telegram)
        db_path = tmp_path / "appeals.db"
        bot = BotProcess(tmp_path, config)
        resident, admin = TgUser(fake, TG_RESIDENT), TgUser(fake, TG_ADMIN)

        async def polling() -> bool:
            assert bot is not None and bot.running(), bot.log() if bot else ""
            return int((await fake.state())["holding"]) > 0

        await bot.start()
        await until(polling, START_WITHIN, "the bot's first getUpdates")
        await admin.say("/start", "/reply")  # the official writes first; gets the staff help
        for text, expect in TG_FIRST_HALF:
            await resident.say(text, expect)

        async def recorded() -> bool:
            with database(db_path) as db:
                row = db.execute("SELECT count(*) FROM outbox WHERE status = 'pending'")
                return bool(row.fetchone()[0] == 0)

        # Mid-dialogue, not mid-send: Telegram has no idempotency key, so a kill between a
        # send and its record shows that one message twice (README, "Crashes and stopping").
        # The kill mid-delivery below is where the outbox's retries are tested.
        await until(recorded, REPLY_WITHIN, "the last reply to be recorded as sent")
        await bot.sigkill()
        figures["sigkills"] += 1

        await bot.start()  # getUpdates again from the saved offset; seen updates are skipped
        await until(polling, START_WITHIN, "the restarted bot's getUpdates")
        for text, expect in TG_SECOND_HALF:
            await resident.say(text, expect)
        with database(db_path) as db:
            assert db.execute("SELECT count(*) FROM appeals").fetchone() == (1,)

        for kind, path, fault in TG_FAULTS:
            await fake.call(path, {"method": "sendMessage", "times": 1, **fault})
            figures["kinds"].append(kind)
            figures["faults injected"] += int(fault.get("times", 1))
        await fake.call("/message", {"user_id": TG_ADMIN, "text": "/reply 1 Засыплем до пятницы."})

        async def failing() -> bool:
            errors = (await fake.state())["answered_errors"]
            return sum(1 for e in errors if e[0] == "sendMessage" and e[1] == 500) >= 3

        await until(failing, REPLY_WITHIN * 2, "the outage to be met by retries")
        await bot.sigkill()  # mid-delivery: the answer waits in the outbox for its retry
        figures["sigkills"] += 1
        with database(db_path) as db:
            pending = db.execute("SELECT count(*) FROM outbox WHERE status = 'pending'").fetchone()
        assert pending[0] >= 1
        state = await fake.state()
        outage = sum(1 for e in state["answered_errors"] if e[0] == "sendMessage" and e[1] == 500)
        figures["faults injected"] -= 1000 - outage  # count only the failures served
        await fake.call("/heal", {})

        await bot.start()

        async def answered() -> bool:
            return any(t.startswith("Ответ на обращение №1") for t in await resident.inbox())

        await until(answered, REPLY_WITHIN, "the answer after the restart")

        async def outbox_empty() -> bool:
            with database(db_path) as db:
                row = db.execute("SELECT count(*) FROM outbox WHERE status != 'sent'").fetchone()
            return bool(row[0] == 0)

        await until(outbox_empty, REPLY_WITHIN, "every outbox row to be sent")
        await until(polling, START_WITHIN, "getUpdates after the last restart")
        code = await bot.sigterm(STOP_WITHIN)
        assert code == 0, bot.log()[-3000:]
        assert "appeals-bot stopped" in bot.log()

        state = await fake.state()
        assert state["errors"] == []
        texts_shown = Counter((m["chat_id"], m["text"] or m["caption"]) for m in state["sent"])
        repeated = {key: n for key, n in texts_shown.items() if n > 1}
        with database(db_path) as db:
            rows = db.execute("SELECT count(*) FROM outbox").fetchone()[0]
            assert db.execute("SELECT count(*) FROM appeals").fetchone() == (1,)
        answers = [t for t in await resident.inbox() if t.startswith("Ответ на обращение №1")]
        sends = [c for c in state["calls"] if c["method"] == "sendMessage"]
        figures.update(
            {
                "outbox rows": rows,
                "messages shown": len(state["sent"]),
                "sendMessage calls": len(sends),
                "lost": rows - len(state["sent"]),
                "duplicated": sum(n - 1 for n in repeated.values()),
                "appeals": 1,
            }
        )
        print(f"\nprocess test figures, Telegram: {figures}")
        assert answers and len(answers) == 1
        assert repeated == {}
        assert len(state["sent"]) == rows  # one message per row: nothing lost, nothing twice
    finally:
        if bot is not None:
            await kill(bot.process)
        await fake.close()
