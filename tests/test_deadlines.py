"""Deadlines (SPEC §8): reminders to administrators before the deadline, one escalation to
moderators after it, across restarts (nothing repeated, nothing skipped), reopened appeals,
/overdue. The scheduler's passes are driven with the test clock (`run_once`), no sleeping."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import bot.scheduler
from bot.app import App
from bot.settings import handler_settings
from handlers import texts
from handlers.figures.deadlines import deadline_pass
from tests.conftest import Clock, Harness, Person, office_config, query
from tests.flows import file_appeal


@pytest.fixture
def resident(office: Harness) -> Person:
    return office.person("1001", "Иван Петров", platform="vk")


async def tick(office: Harness) -> None:
    """One scheduler pass at the test clock's time, and delivery of what it queued."""
    await office.app.scheduler.run_once(office.clock.now)
    await office.app.settle()


def notices(office: Harness) -> list[tuple[Any, ...]]:
    return query(
        office.config,
        "SELECT appeal_id, kind, due_at, recipients FROM deadline_notices"
        " ORDER BY appeal_id, kind, due_at",
    )


@pytest.fixture
def office(office_on_each_backend: Harness) -> Harness:
    return office_on_each_backend


async def test_reminder_then_one_escalation_across_restarts(
    office: Harness, resident: Person, admin: Person, moderator: Person
) -> None:
    number = await file_appeal(resident)  # deadline 03.03.2026 11:00 local (START + 24 h)
    admin.replies()

    office.clock.advance(hours=19, minutes=59)
    await tick(office)
    assert admin.replies() == [] and moderator.replies() == []

    office.clock.advance(minutes=1, seconds=1)  # 4 h before the deadline have begun
    await tick(office)
    [reminder] = admin.replies()
    assert reminder.appeal_number == number
    assert reminder.text.startswith(
        f"Напоминание: срок ответа на обращение №{number} — 03.03.2026 11:00 (UTC+5), осталось 4 ч."
    )
    assert "Тема: Дороги · Сергино · Новое" in reminder.text
    assert f"/reply {number} текст" in reminder.text
    assert moderator.replies() == []

    await tick(office)
    await office.restart()
    await tick(office)
    assert admin.replies() == [] and moderator.replies() == []  # not repeated

    office.clock.advance(hours=4)  # 1 s past the deadline
    await tick(office)
    [escalation] = moderator.replies()
    assert escalation.text.startswith(
        f"Просрочено обращение №{number}: нет ответа к сроку 03.03.2026 11:00 (UTC+5)"
    )
    assert "Ответственные: tg:500" in escalation.text
    assert f"/assign {number} код_поселения" in escalation.text
    assert admin.replies() == []  # the administrator was reminded already

    await office.restart()
    office.clock.advance(hours=30)
    await tick(office)
    await tick(office)
    assert admin.replies() == [] and moderator.replies() == []  # escalated once
    assert [(n, kind, r) for n, kind, _, r in notices(office)] == [
        (number, "escalation", 1),
        (number, "reminder", 1),
    ]


async def test_nothing_is_skipped_while_the_bot_is_stopped(
    office: Harness, resident: Person, admin: Person, moderator: Person
) -> None:
    number = await file_appeal(resident)
    admin.replies()
    await office.app.stop()
    office.clock.advance(hours=26)  # the reminder and the deadline both passed meanwhile
    office.app = App(office.config, list(office.channels.values()), clock=office.clock)
    await office.app.start()
    await tick(office)
    [late] = admin.replies()
    assert late.text.startswith(
        f"Срок ответа на обращение №{number} истёк 03.03.2026 11:00 (UTC+5)."
    )
    [escalation] = moderator.replies()
    assert "просрочка 2 ч" in escalation.text
    await tick(office)
    assert admin.replies() == [] and moderator.replies() == []


async def test_answered_and_closed_appeals_are_left_alone(
    office: Harness, resident: Person, admin: Person, moderator: Person
) -> None:
    answered = await file_appeal(resident)
    office.clock.advance(minutes=1)  # a resident files at most ~2 appeals a minute (flood limit)
    closed = await file_appeal(resident, "Не горит фонарь на остановке у школы")
    office.clock.advance(minutes=1)
    taken = await file_appeal(resident, "Не вывозят мусор третью неделю подряд")
    await admin.say(f"/reply {answered} Засыпали.")
    await admin.say(f"/close {closed}")
    await admin.say(f"/take {taken}")
    admin.replies()
    office.clock.advance(hours=25)
    await tick(office)
    reminded = [m.appeal_number for m in admin.replies()]
    escalated = [m.appeal_number for m in moderator.replies()]
    assert reminded == [taken] and escalated == [taken]  # «В работе» still needs an answer


async def test_reopened_appeal_gets_a_new_deadline(
    office: Harness, resident: Person, admin: Person, moderator: Person
) -> None:
    number = await file_appeal(resident)
    office.clock.advance(hours=2)
    await admin.say(f"/reply {number} Засыпали.")
    office.clock.advance(hours=28)  # 30 h after filing: the first deadline is long gone
    await resident.press("Вопрос не решён")
    admin.replies()
    moderator.replies()

    await tick(office)
    assert admin.replies() == [] and moderator.replies() == []  # answered on time once
    await moderator.say("/overdue")
    assert moderator.text == texts.OVERDUE_EMPTY

    office.clock.advance(hours=20, seconds=1)  # 4 h before the new deadline (+24 h)
    await tick(office)
    [reminder] = admin.replies()
    assert "срок ответа на обращение" in reminder.text
    assert "04.03.2026 17:00" in reminder.text  # reopened at 03.03 17:00 local, + 24 h
    assert texts.DEADLINE_REOPENED in reminder.text
    assert "В работе" in reminder.text

    office.clock.advance(hours=4)
    await tick(office)
    [escalation] = moderator.replies()
    assert escalation.text.startswith(f"Просрочено обращение №{number}")
    assert texts.DEADLINE_REOPENED in escalation.text
    await moderator.say("/overdue")
    lines = moderator.text.splitlines()
    assert lines[0] == "Просроченные обращения: 1"
    assert lines[1].startswith(f"№{number} ·") and lines[1].endswith("срок 04.03.2026 17:00")

    # answered again, rated unresolved again: a third deadline, with its own notices
    await admin.say(f"/reply {number} Теперь точно засыпали.")
    office.clock.advance(hours=1)
    await resident.press("Вопрос не решён")
    office.clock.advance(hours=24, seconds=1)
    await tick(office)
    assert len(admin.replies()) == 2  # the notice of the new answer's rating, and a reminder
    assert len([m for m in moderator.replies() if m.text.startswith("Просрочено")]) == 1
    assert len(notices(office)) == 4


async def test_overdue_lists_the_longest_overdue_first(
    office: Harness, resident: Person, moderator: Person
) -> None:
    first = await file_appeal(resident)
    office.clock.advance(hours=3)
    second = await file_appeal(resident, "Не горит фонарь на остановке у школы")
    office.clock.advance(hours=22)
    await moderator.say("/overdue")
    assert [line.split(" ·")[0] for line in moderator.text.splitlines()[1:]] == [f"№{first}"]
    office.clock.advance(hours=3)
    await moderator.say("/overdue")
    numbers = [line.split(" ·")[0] for line in moderator.text.splitlines()[1:]]
    assert numbers == [f"№{first}", f"№{second}"]


async def test_no_administrator_means_the_moderators_are_reminded(
    office: Harness, resident: Person, moderator: Person
) -> None:
    number = await file_appeal(resident, settlement="Талинка")
    moderator.replies()  # the card
    office.clock.advance(hours=21)
    await tick(office)
    [reminder] = moderator.replies()
    assert reminder.text.startswith(f"Напоминание: срок ответа на обращение №{number}")
    office.clock.advance(hours=4)
    await tick(office)
    [escalation] = moderator.replies()
    assert texts.ESCALATION_NO_ADMINS in escalation.text


async def test_quoting_a_reminder_answers_the_appeal(
    office: Harness, resident: Person, admin: Person
) -> None:
    number = await file_appeal(resident)
    admin.replies()
    office.clock.advance(hours=21)
    await tick(office)
    [reminder] = admin.replies()
    channel = office.channels["tg"]
    quoted = channel.sent_ids[channel.sent.index(reminder)]
    await admin.send("Бригада выехала.", reply_to=quoted)
    assert admin.text == texts.REPLIED.format(number=number)
    assert "Бригада выехала." in resident.replies()[-1].text


async def test_remind_before_zero_means_escalations_only(tmp_path: Path, clock: Clock) -> None:
    config = office_config(tmp_path, sla={"answer_within_hours": 2, "remind_before_hours": 0})
    office = Harness(config, clock, platforms=("vk", "tg"))
    await office.start()
    try:
        resident = office.person("1001", platform="vk")
        admin = office.person("500", platform="tg")
        moderator = office.person("900", platform="tg")
        number = await file_appeal(resident)
        assert "03.03.2026" not in resident.text and "02.03.2026 13:00" in resident.text
        admin.replies()
        office.clock.advance(hours=1, minutes=59)
        await tick(office)
        assert admin.replies() == [] and moderator.replies() == []
        office.clock.advance(minutes=2)
        await tick(office)
        assert admin.replies() == []
        assert [m.appeal_number for m in moderator.replies()] == [number]
    finally:
        await office.app.stop()


async def test_a_pass_is_bounded_and_the_rest_follow(
    office: Harness, resident: Person, moderator: Person
) -> None:
    numbers = []
    for _ in range(3):
        numbers.append(await file_appeal(resident, settlement="Талинка"))
        office.clock.advance(minutes=1)  # under the flood limit
    moderator.replies()
    office.clock.advance(hours=25)
    settings = handler_settings(office.config)
    results = [
        await deadline_pass(office.app.db, settings, office.clock.now, limit=2) for _ in range(3)
    ]
    assert [(r.reminders, r.escalations) for r in results] == [(2, 2), (1, 1), (0, 0)]
    await office.app.settle()
    escalated = [m.appeal_number for m in moderator.replies() if "Просрочено" in m.text]
    assert escalated == numbers  # the earliest deadline first


async def test_the_app_runs_the_scheduler(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside `appeals-bot run` the passes come by themselves (here every 10 ms)."""
    monkeypatch.setattr(bot.scheduler, "PASS_SECONDS", 0.01)
    office = Harness(office_config(tmp_path), clock, platforms=("vk", "tg"))
    await office.start()
    try:
        resident = office.person("1001", platform="vk")
        admin = office.person("500", platform="tg")
        number = await file_appeal(resident)
        admin.replies()
        assert office.app.scheduler.running
        office.clock.advance(hours=21)
        for _ in range(500):  # up to 5 s
            if admin.replies():
                break
            await asyncio.sleep(0.01)
        assert [m.appeal_number for m in admin.last] == [number]
        assert office.app.scheduler.passes > 0
    finally:
        await office.app.stop()
    assert not office.app.scheduler.running


async def test_every_list_uses_the_renewed_deadline(
    office: Harness, resident: Person, admin: Person, moderator: Person
) -> None:
    """Issue 14, item 16: `/list overdue`, `/list` and `/overdue` agree with the reminders
    on a reopened appeal's deadline."""
    number = await file_appeal(resident)
    office.clock.advance(hours=2)
    await admin.say(f"/reply {number} Засыпали.")
    office.clock.advance(hours=28)  # past the registration deadline
    await resident.press("Вопрос не решён")
    await admin.say("/list overdue")
    assert admin.text == texts.LIST_EMPTY.format(filter="просроченные")
    await moderator.say("/overdue")
    assert moderator.text == texts.OVERDUE_EMPTY
    await admin.say("/list")
    [line] = admin.text.splitlines()[1:]
    assert line.startswith(f"№{number} ·") and line.endswith("срок 04.03.2026 17:00")

    office.clock.advance(hours=24, seconds=1)
    for person, command in ((admin, "/list overdue"), (moderator, "/overdue")):
        await person.say(command)
        [line] = person.text.splitlines()[1:]
        assert line.startswith(f"№{number} ·") and line.endswith("срок 04.03.2026 17:00")
