"""Fixtures that drive the whole product through real channels: an app on a SQLite file in
tmp_path, in-memory channels, a controllable clock, and people who type and press buttons."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import App
from bot.channels.memory import MemoryChannel
from bot.cli import example_config_path
from bot.config import Config, StorageSection, load_config
from handlers.messages import Outgoing
from storage.db import Database, Store

START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)  # 11:00 in Asia/Yekaterinburg


class Clock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Person:
    """Someone writing to the bot on one channel; `say` and `press` return the replies."""

    def __init__(self, harness: Harness, channel: MemoryChannel, user_id: str, name: str) -> None:
        self.harness = harness
        self.channel = channel
        self.user_id = user_id
        self.name = name
        self._seen = 0
        self.last: list[Outgoing] = []

    async def send(self, text: str = "", **fields: Any) -> list[Outgoing]:
        """Send a message; returns the replies to it (earlier unread ones are skipped)."""
        self.replies()
        fields.setdefault("display_name", self.name)
        await self.channel.receive(self.user_id, text, **fields)
        await self.harness.app.settle()
        return self.replies()

    async def say(self, text: str) -> list[Outgoing]:
        return await self.send(text)

    async def press(self, label: str) -> list[Outgoing]:
        """Press the button labelled `label` on the latest keyboard the bot showed."""
        self.replies()
        for message in reversed(self.last):
            if message.keyboard is None:
                continue
            for button in message.keyboard.buttons:
                if button.label == label:
                    return await self.send(payload=button.payload)
        raise AssertionError(f"no button {label!r} in {[m.text[:40] for m in self.last]}")

    def replies(self) -> list[Outgoing]:
        sent = self.channel.sent_to(self.user_id)
        new = sent[self._seen :]
        self._seen = len(sent)
        if new:
            self.last = new
        return new

    @property
    def text(self) -> str:
        """All text of the latest replies, joined."""
        return "\n".join(m.text for m in self.last)

    @property
    def labels(self) -> list[str]:
        keyboard = self.last[-1].keyboard if self.last else None
        return [b.label for b in keyboard.buttons] if keyboard else []


class Harness:
    """The app on in-memory channels, one per platform (the first is `channel`)."""

    def __init__(self, config: Config, clock: Clock, platforms: tuple[str, ...] = ("vk",)) -> None:
        self.config = config
        self.clock = clock
        self.channels = {p: MemoryChannel(p) for p in platforms}
        self.channel = self.channels[platforms[0]]
        self.app = App(config, list(self.channels.values()), clock=clock)

    async def start(self) -> None:
        await self.app.start()

    async def restart(self) -> None:
        """A new app instance on the same database file, as after a process restart;
        the people keep their chats (the same channel object)."""
        await self.app.stop()
        self.app = App(self.config, list(self.channels.values()), clock=self.clock)
        await self.app.start()

    def person(
        self, user_id: str = "1001", name: str = "Иван Петров", platform: str | None = None
    ) -> Person:
        channel = self.channels[platform] if platform else self.channel
        return Person(self, channel, user_id, name)

    def everything_sent(self) -> list[Outgoing]:
        return [m for channel in self.channels.values() for m in channel.sent]


def make_config(db_path: Path | str, **sections: Any) -> Config:
    """The example config on the SQLite file `db_path`, or on the database URL given."""
    config = load_config(example_config_path())
    url = db_path if isinstance(db_path, str) else f"sqlite:///{db_path}"
    update: dict[str, Any] = {"storage": StorageSection(url=url, pool_size=4)}
    # Tests type far faster than people, on a frozen clock: flood control is tested on
    # its own (tests/test_flood.py) and kept out of the way elsewhere.
    sections = {"limits": {"messages_per_minute": 10_000}} | sections
    for name, values in sections.items():  # validated, as if the file had said so
        section = getattr(config, name)
        update[name] = type(section).model_validate({**section.model_dump(), **values})
    return config.model_copy(update=update)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path / "appeals.db")


@pytest.fixture
async def harness(config: Config, clock: Clock) -> AsyncIterator[Harness]:
    h = Harness(config, clock)
    await h.start()
    yield h
    await h.app.stop()


@pytest.fixture
def resident(harness: Harness) -> Person:
    return harness.person()


# A district office for staff tests: Сергино's administrator on Telegram, Андра's on VK,
# Талинка and the rest with nobody, one moderator on Telegram.
OFFICE_ADMINS = {"sergino": ["tg:500"], "andra": ["vk:600"]}
OFFICE_MODERATOR = "tg:900"


def office_config(tmp_path: Path | str, **sections: Any) -> Config:
    """The district office on tmp_path/appeals.db, or on the database URL given."""
    where = tmp_path if isinstance(tmp_path, str) else tmp_path / "appeals.db"
    config = make_config(where, **sections)
    settlements = [
        s.model_copy(update={"admins": OFFICE_ADMINS.get(s.code, [])}) for s in config.settlements
    ]
    moderators = config.moderators.model_copy(update={"ids": [OFFICE_MODERATOR]})
    return config.model_copy(update={"settlements": settlements, "moderators": moderators})


@pytest.fixture
async def office(tmp_path: Path, clock: Clock) -> AsyncIterator[Harness]:
    harness = Harness(office_config(tmp_path), clock, platforms=("vk", "tg"))
    await harness.start()
    yield harness
    await harness.app.stop()


@pytest.fixture
async def office_on_each_backend(storage_url: str, clock: Clock) -> AsyncIterator[Harness]:
    """The district office on each backend (SQLite; PostgreSQL where
    APPEALS_TEST_POSTGRES_URL names a server, SPEC §15). A module whose tests run on both
    makes it its `office`."""
    harness = Harness(office_config(storage_url), clock, platforms=("vk", "tg"))
    await harness.start()
    yield harness
    await harness.app.stop()


@pytest.fixture
def admin(office: Harness) -> Person:
    """The administrator of Сергино, on Telegram."""
    return office.person("500", "Ольга", platform="tg")


@pytest.fixture
def moderator(office: Harness) -> Person:
    return office.person("900", "Модератор", platform="tg")


# Folders of files a test run leaves for people to look at (the dashboard's screenshots),
# named at the end of the run.
ARTEFACTS: list[Path] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for folder in dict.fromkeys(ARTEFACTS):
        terminalreporter.write_line(f"artefacts: {folder}")


# --- PostgreSQL (SPEC §15) --------------------------------------------------------------------

POSTGRES_VAR = "APPEALS_TEST_POSTGRES_URL"
BACKENDS = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that takes `backend` runs over both backends, unless it also reads the SQLite
    file itself (`db_path`): then it is SQLite's own."""
    if "backend" in metafunc.fixturenames:
        both = "db_path" not in metafunc.fixturenames
        metafunc.parametrize("backend", BACKENDS if both else BACKENDS[:1], indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The PostgreSQL server of APPEALS_TEST_POSTGRES_URL; the test is skipped, saying so,
    where it is unset or nothing answers there."""
    import psycopg

    url = os.environ.get(POSTGRES_VAR, "")
    if not url:
        pytest.skip(f"{POSTGRES_VAR} is not set: no PostgreSQL server to test against")
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.Error as error:
        pytest.skip(f"{POSTGRES_VAR}: no PostgreSQL server reachable ({type(error).__name__})")
    return url


def with_schema(url: str, schema: str) -> str:
    """The URL with every connection's search_path set to `schema`."""
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A schema of its own on the test server for one test, dropped afterwards."""
    import psycopg

    schema = f"appeals_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_schema(postgres_server, schema)
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def query(config: Config, sql: str) -> list[tuple[Any, ...]]:
    """Rows of the configured database, read beside the app (SQLite or PostgreSQL)."""
    storage = config.storage
    if storage.is_postgres:
        import psycopg

        with psycopg.connect(storage.url) as conn:
            return [tuple(row) for row in conn.execute(sql)]
    conn = sqlite3.connect(storage.sqlite_path)
    try:
        return [tuple(row) for row in conn.execute(sql)]
    finally:
        conn.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """The SQLite file of the test's database. A test that takes it reads or writes the file
    itself, and so runs on SQLite only (pytest_generate_tests)."""
    return tmp_path / "appeals.db"


@pytest.fixture
def storage_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The `[storage] url` of the test's backend (SQLite: tmp_path/appeals.db)."""
    if backend == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'appeals.db'}"


async def open_test_store(url: str) -> Store:
    if url.startswith("sqlite:///"):
        return await Database.open(url.removeprefix("sqlite:///"))
    from storage.postgres import PostgresDatabase

    return await PostgresDatabase.open(url, pool_size=4)
