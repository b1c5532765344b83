"""Bursts against fake servers that enforce the documented send limits (issue 7): many
residents writing at once get every reply exactly once, and the limits are never tripped.
VK: 20 calls a second per community token (§1.8); Telegram: 30 messages a second and one
a second into a chat (§3.5). These tests take about as long as the limits make them. The
bot is set 10 % under the fake's limits here: the fake shares the bot's event loop and
counts calls when its handler runs, which a busy machine bunches together; bench/burst
measures against a fake in its own process with the bot at the documented rates."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from bot.app import App
from bot.channels.telegram import TelegramChannel
from bot.channels.vk import VkChannel
from tests.conftest import Clock, make_config
from tests.fakes.telegram import TOKEN, FakeTelegram
from tests.fakes.vk import FakeVK

VK_RESIDENTS = 200
TG_RESIDENTS = 100


async def test_vk_burst_within_the_limit(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    fake = FakeVK(777, hold_seconds=0.05)
    fake.rate_limit = 20
    await fake.start()
    config = make_config(
        tmp_path / "appeals.db",
        # 10 % under the enforced limit: this fake runs in the bot's own event loop and counts
        # calls when its handler runs, which bunches them up when the loop is busy.
        vk={
            "enabled": True,
            "token": "vk-token",
            "group_id": 777,
            "api_url": fake.api_url,
            "send_rate": 18,
        },
    )
    app = App(config, [VkChannel(config.vk)], clock=clock)
    await app.start()
    try:
        await fake.wait_for_poll()
        users = [10_000 + i for i in range(VK_RESIDENTS)]
        for user in users:  # everyone at once: a greeting, then the consent text
            fake.message_new(user, "Здравствуйте")
            fake.message_new(user, "Подать обращение")
        expected = 2 * VK_RESIDENTS
        await fake.wait_for(lambda: len(fake.sent) >= expected, within=120, what="replies")
        await app.settle()
        per_user = Counter(m.peer_id for m in fake.sent)
        lost = sum(max(0, 2 - per_user[u]) for u in users)
        duplicated = sum(max(0, per_user[u] - 2) for u in users)
        print(
            f"\nVK burst: {len(fake.sent)} sent, lost {lost}, duplicated {duplicated}, "
            f"limit errors {fake.rate_errors}"
        )
        assert (lost, duplicated, fake.rate_errors) == (0, 0, 0)
        for user in users:  # and in order within each chat
            texts = [m.text for m in fake.messages_to(user)]
            assert "канал обратной связи" in texts[0] and "Согласие" in texts[1]
    finally:
        await app.stop()
        await fake.stop()


async def test_telegram_burst_within_both_limits(tmp_path: Path, clock: Clock) -> None:
    fake = FakeTelegram(hold_seconds=0.05)
    fake.rate_limit = 30
    fake.per_chat_limit = 1
    await fake.start()
    config = make_config(
        tmp_path / "appeals.db",
        telegram={
            "enabled": True,
            "token": TOKEN,
            "api_url": fake.url,
            "send_rate": 27,
            "per_chat_rate": 0.9,
        },
    )
    app = App(config, [TelegramChannel(config.telegram)], clock=clock)
    await app.start()
    try:
        users = [20_000 + i for i in range(TG_RESIDENTS)]
        for user in users:
            fake.message(user, "/start")
            fake.message(user, "Подать обращение")
        expected = 2 * TG_RESIDENTS
        await fake.wait_for(lambda: len(fake.sent) >= expected, within=120, what="replies")
        await asyncio.sleep(0.2)
        await app.settle()
        per_user = Counter(m.chat_id for m in fake.sent)
        lost = sum(max(0, 2 - per_user[u]) for u in users)
        duplicated = sum(max(0, per_user[u] - 2) for u in users)
        print(
            f"\nTelegram burst: {len(fake.sent)} sent, lost {lost}, duplicated {duplicated}, "
            f"limit errors {fake.rate_errors}"
        )
        assert (lost, duplicated, fake.rate_errors) == (0, 0, 0)
    finally:
        await app.stop()
        await fake.stop()
