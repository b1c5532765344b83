"""Retention (SPEC §7, [retention]): what is kept only for a while is pruned on schedule, and
the personal data of appeals closed longer ago than the archive term is erased while their
figures stay."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.channels.base import SendError
from bot.config import Config
from tests.conftest import Clock, Harness, Person, query
from tests.flows import DESCRIPTION, to_description

PHONE = "+79123456789"


@pytest.fixture
def office(office_on_each_backend: Harness) -> Harness:
    return office_on_each_backend


def rows(config: Config, sql: str) -> list[tuple[Any, ...]]:
    return query(config, sql)


async def file_with_contact(person: Person) -> int:
    await to_description(person)
    await person.say(DESCRIPTION)
    await person.press("Пропустить")  # place
    await person.press("Пропустить")  # photos
    await person.press("Оставить как есть")  # the name from the profile
    await person.say("8 912 345-67-89")
    await person.press("Отправить")
    return int(person.text.split("№")[1].split()[0])


async def test_old_records_are_pruned_and_recent_ones_kept(
    office: Harness, clock: Clock, admin: Person
) -> None:
    config = office.config
    resident = office.person("1001", "Иван Петров", platform="vk")
    await file_with_contact(resident)
    events_before = rows(config, "SELECT count(*) FROM processed_events")[0][0]
    sent_before = rows(config, "SELECT count(*) FROM outbox WHERE status = 'sent'")[0][0]

    clock.advance(days=29)
    assert await office.app.apply_retention() == {"events": 0, "inbox": 0, "sent": 0, "erased": 0}

    # A message that cannot be delivered yet stays pending, however old it grows.
    office.channels["vk"].failures["1001"] = SendError("HTTP 502", retryable=True)
    await resident.say("Меню")
    clock.advance(days=91)
    done = await office.app.apply_retention()
    assert done["sent"] == sent_before
    assert rows(config, "SELECT count(*) FROM outbox WHERE status = 'sent'") == [(0,)]
    assert rows(config, "SELECT count(*) FROM sent_messages") == [(0,)]
    assert rows(config, "SELECT count(*) FROM outbox WHERE status = 'pending'") == [(1,)]
    assert done["events"] >= events_before
    assert rows(config, "SELECT count(*) FROM processed_events") == [(0,)]
    assert rows(config, "SELECT count(*) FROM appeals") == [(1,)]  # appeals are not pruned
    assert done["erased"] == 0  # still open


async def test_personal_data_of_long_closed_appeals_is_erased_figures_kept(
    office: Harness, clock: Clock, admin: Person
) -> None:
    config = office.config
    resident = office.person("1001", "Иван Петров", platform="vk")
    old = await file_with_contact(resident)
    await admin.say(f"/reply {old} Яму засыплем до пятницы.")
    await admin.say(f"/close {old}")
    clock.advance(days=365 * 4)
    recent = await file_with_contact(resident)
    await admin.say(f"/close {recent}")

    clock.advance(days=365 + 30)  # the first closed 5 years and a month ago, the second 1
    done = await office.app.apply_retention()
    assert done["erased"] == 1
    [erased] = rows(
        config,
        f"SELECT text, contact_name, contact_phone, photos, status, category, settlement,"
        f" erased_at IS NOT NULL FROM appeals WHERE id = {old}",
    )
    assert erased == ("", None, None, "[]", "closed", "roads", "sergino", 1)
    assert rows(config, f"SELECT count(text) FROM appeal_events WHERE appeal_id = {old}") == [(0,)]
    kept = rows(config, f"SELECT text, contact_phone FROM appeals WHERE id = {recent}")
    assert kept == [(DESCRIPTION, PHONE)]
    # Nothing about the erased appeal still names the person in a stored message.
    bodies = [b for (b,) in rows(config, f"SELECT body FROM outbox WHERE appeal_id = {old}")]
    assert all(PHONE not in body and "Петров" not in body for body in bodies)
    # The figures still count it.
    async with office.app.db.transaction() as tx:
        figures = await tx.appeals.figures(
            datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
        )
    assert (figures.received, figures.answered) == (2, 1)
    assert await office.app.apply_retention() == {"events": 0, "inbox": 0, "sent": 0, "erased": 0}


async def test_forget_erases_the_person_from_stored_messages_banned_or_not(
    office: Harness, moderator: Person, admin: Person
) -> None:
    """Issue 14 item 6 and issue 13: a banned resident can still withdraw consent, and
    /forget erases the name and phone from the outbox too, queued or sent."""
    config = office.config
    resident = office.person("1001", "Иван Петров", platform="vk")
    number = await file_with_contact(resident)
    # The notification to Сергино's administrator names the resident and the phone.
    assert any(PHONE in body for (body,) in rows(config, "SELECT body FROM outbox"))
    await moderator.say("/ban vk:1001 спам")
    await resident.say("Здравствуйте")  # the one notice of the ban
    await resident.say("/forget")
    assert resident.labels[:1] == ["Да, удалить"]
    await resident.press("Да, удалить")
    assert "удален" in resident.text.casefold()
    [appeal] = rows(config, f"SELECT contact_name, contact_phone FROM appeals WHERE id = {number}")
    assert appeal == (None, None)
    bodies = [body for (body,) in rows(config, "SELECT body FROM outbox")]
    assert not any(PHONE in body or "Петров" in body for body in bodies)
    assert await resident.say("Подать обращение") == []  # still banned for everything else
