"""Flood control (SPEC §12): one warning over limits.messages_per_minute, then silence for a
cool-down; staff exempt; the others unaffected."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from handlers import texts
from tests.conftest import Clock, Harness, make_config


@pytest.fixture
async def office(tmp_path: Path, clock: Clock) -> AsyncIterator[Harness]:
    config = make_config(tmp_path / "appeals.db", limits={"messages_per_minute": 5})
    moderators = config.moderators.model_copy(update={"ids": ["vk:900"]})
    harness = Harness(config.model_copy(update={"moderators": moderators}), clock)
    await harness.start()
    yield harness
    await harness.app.stop()


async def test_one_warning_then_silence_then_back(office: Harness) -> None:
    flooder, neighbour = office.person("1"), office.person("2")
    answered = 0
    warnings = 0
    for i in range(12):
        replies = await flooder.say(f"сообщение {i}")
        warnings += sum(texts.FLOOD_WARNING in m.text for m in replies)
        answered += sum(texts.FLOOD_WARNING not in m.text for m in replies)
        office.clock.advance(seconds=1)
    assert (answered, warnings) == (5, 1)
    assert "канал обратной связи" in (await neighbour.say("Здравствуйте"))[0].text
    office.clock.advance(minutes=3)
    assert "канал обратной связи" in (await flooder.say("Здравствуйте"))[0].text


async def test_a_slow_writer_is_never_throttled(office: Harness) -> None:
    resident = office.person("3")
    for _ in range(30):
        assert await resident.say("Здравствуйте")
        office.clock.advance(seconds=13)  # under 5 a minute


async def test_staff_are_exempt(office: Harness) -> None:
    moderator = office.person("900")
    for _ in range(12):
        replies = await moderator.say("/overdue")
        assert [m.text for m in replies] == [texts.OVERDUE_EMPTY]
