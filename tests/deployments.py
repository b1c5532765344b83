"""Two VK communities (the district's and Сергино's) and two Telegram bots (the district's and
Сергино's) on fake servers, with the real app: the deployment of issue 18's acceptance, shared
by tests/test_communities.py and tests/test_comments.py."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bot.app import App
from bot.channels.telegram import TelegramChannel
from bot.channels.vk import VkChannel
from bot.config import Config
from tests.conftest import Clock, make_config
from tests.fakes.router import TokenRouter
from tests.fakes.telegram import TOKEN as DISTRICT_BOT
from tests.fakes.telegram import FakeTelegram
from tests.fakes.telegram import SentMessage as TgMessage
from tests.fakes.vk import FakeVK, SentMessage

DISTRICT = 777  # the district's VK community ([vk])
SERGINO = 888  # Сергино's own ([[vk.communities]])
SERGINO_TOKEN = "vk1.a.sergino-token"
SERGINO_BOT = "654321:SERGINO-bot-token-abcdefghijklmnop"
SERGINO_BOT_ID = "654321"
RESIDENT = 1001
ADMIN = 5002  # Сергино's administrator, on Telegram
MODERATOR = 5003


@dataclass
class Deployment:
    vk: FakeVK
    district_bot: FakeTelegram
    sergino_bot: FakeTelegram
    router: TokenRouter
    config: Config
    clock: Clock
    app: App | None = None

    async def start(self) -> None:
        self.app = App(
            self.config,
            [VkChannel(self.config.vk), TelegramChannel(self.config.telegram)],
            clock=self.clock,
        )
        await self.app.start()

    async def stop(self) -> None:
        if self.app is not None:
            await self.app.stop()

    async def settle(self) -> None:
        assert self.app is not None
        await self.app.settle()

    async def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """What the database holds, read beside the app (SQLite or PostgreSQL)."""
        await self.settle()
        storage = self.config.storage
        if storage.is_postgres:
            with psycopg.connect(storage.url) as conn:
                return [tuple(row) for row in conn.execute(sql)]
        with sqlite3.connect(storage.sqlite_path) as raw:
            return list(raw.execute(sql))


class VkResident:
    """Someone writing to one VK community."""

    def __init__(self, deployment: Deployment, user_id: int, group_id: int) -> None:
        self.deployment = deployment
        self.user_id = user_id
        self.group_id = group_id

    @property
    def fake(self) -> FakeVK:
        return self.deployment.vk

    @property
    def inbox(self) -> list[SentMessage]:
        """Everything sent to this person, by any community."""
        return self.fake.messages_to(self.user_id)

    async def say(self, text: str = "", **fields: Any) -> list[SentMessage]:
        seen = len(self.inbox)
        self.fake.message_new(self.user_id, text, group_id=self.group_id, **fields)
        await self.fake.wait_for(lambda: len(self.inbox) > seen, what="a reply")
        await self.deployment.settle()
        return self.inbox[seen:]

    def labels(self) -> list[str]:
        keyboard = self.inbox[-1].keyboard or {}
        return [b["action"]["label"] for row in keyboard.get("buttons", []) for b in row]

    def button(self, label: str) -> dict[str, Any]:
        """The action of the latest button labelled `label` shown to this person."""
        for message in reversed(self.inbox):
            for row in (message.keyboard or {}).get("buttons", []):
                for button in row:
                    if button["action"].get("label") == label:
                        return dict(button["action"])
        raise AssertionError(f"no button {label!r} shown to {self.user_id}")

    async def press(self, label: str) -> list[SentMessage]:
        """A text button as message_new with its payload, a callback one as message_event."""
        action = self.button(label)
        if action["type"] != "callback":
            return await self.say(label, payload=action["payload"])
        seen = len(self.inbox)
        self.fake.message_event(self.user_id, json.loads(action["payload"]), group_id=self.group_id)
        await self.fake.wait_for(lambda: len(self.inbox) > seen, what="a reply")
        await self.deployment.settle()
        return self.inbox[seen:]


class TgStaff:
    """An official in a private chat with one of the Telegram bots."""

    def __init__(self, deployment: Deployment, user_id: int, bot: FakeTelegram) -> None:
        self.deployment = deployment
        self.user_id = user_id
        self.bot = bot

    @property
    def inbox(self) -> list[TgMessage]:
        return self.bot.messages_to(self.user_id)

    async def say(self, text: str) -> list[TgMessage]:
        seen = len(self.inbox)
        self.bot.message(self.user_id, text)
        await self.bot.wait_for(lambda: len(self.inbox) > seen, what="a reply")
        await self.deployment.settle()
        return self.inbox[seen:]


def deployment_config(
    tmp_path: Path,
    vk: FakeVK,
    router: TokenRouter,
    *,
    sections: dict[str, Any] | None = None,
    storage_url: str | None = None,
    **vk_keys: Any,
) -> Config:
    config = make_config(
        storage_url or tmp_path / "appeals.db",
        vk={
            "enabled": True,
            "token": "vk1.a.district-token",
            "group_id": DISTRICT,
            "api_url": vk.api_url,
            "send_rate": 0,
            "communities": [{"group_id": SERGINO, "token": SERGINO_TOKEN, "settlement": "sergino"}],
            **vk_keys,
        },
        telegram={
            "enabled": True,
            "token": DISTRICT_BOT,
            "api_url": router.url,
            "send_rate": 0,
            "per_chat_rate": 0,
            "communities": [{"token": SERGINO_BOT, "settlement": "sergino"}],
        },
        web={"port": 0},
        **(sections or {}),
    )
    settlements = [
        s.model_copy(update={"admins": [f"tg:{ADMIN}"] if s.code == "sergino" else []})
        for s in config.settlements
    ]
    moderators = config.moderators.model_copy(update={"ids": [f"tg:{MODERATOR}"]})
    return config.model_copy(update={"settlements": settlements, "moderators": moderators})


@asynccontextmanager
async def two_by_two(
    tmp_path: Path,
    clock: Clock,
    *,
    sergino: dict[str, Any] | None = None,
    vk_keys: dict[str, Any] | None = None,
    storage_url: str | None = None,
    **sections: Any,
) -> AsyncIterator[Deployment]:
    """The deployment started, both communities listening; `sergino`: more keys of Сергино's
    [[vk.communities]] entry (comments = true), `vk_keys`: more [vk] keys (mode =
    "callback"), `storage_url`: the database (SQLite in tmp_path by default), `sections`:
    more config sections."""
    vk = FakeVK(DISTRICT, hold_seconds=0.05)
    district_bot = FakeTelegram(DISTRICT_BOT, hold_seconds=0.05, username="district_bot")
    sergino_bot = FakeTelegram(SERGINO_BOT, hold_seconds=0.05, username="sergino_bot")
    router = TokenRouter()
    for fake in (vk, district_bot, sergino_bot, router):
        await fake.start()
    vk.add_community(SERGINO, SERGINO_TOKEN)
    router.add(DISTRICT_BOT, district_bot)
    router.add(SERGINO_BOT, sergino_bot)
    for bot in (district_bot, sergino_bot):
        bot.known_chats.update({ADMIN, MODERATOR})
    config = deployment_config(
        tmp_path,
        vk,
        router,
        communities=[
            {
                "group_id": SERGINO,
                "token": SERGINO_TOKEN,
                "settlement": "sergino",
                **(sergino or {}),
            }
        ],
        sections=sections,
        storage_url=storage_url,
        **(vk_keys or {}),
    )
    found = Deployment(vk, district_bot, sergino_bot, router, config, clock)
    try:
        await found.start()
        if config.vk.mode == "longpoll":
            await vk.wait_for_poll(count=2)  # both communities listen
        yield found
    finally:
        await found.stop()
        for fake in (router, sergino_bot, district_bot, vk):
            await fake.stop()
    assert vk.errors == [] and district_bot.errors == [] and sergino_bot.errors == []
