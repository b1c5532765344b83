"""Staff actions called directly (handlers/staff/actions.py), as a dashboard form or a
comment item will call them: no command text, no incoming message, only the unit of work,
who acts and typed arguments. The action itself checks the rights (SPEC §5, §6, §12)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from bot.settings import handler_settings
from handlers import texts
from handlers.context import Work
from handlers.staff import actions
from handlers.staff.actions import Outcome
from storage.models import Status
from storage.staff import StaffMember
from tests.conftest import Harness
from tests.flows import file_appeal

SERGINO_ADMIN = StaffMember("tg:500", moderator=False, settlements=frozenset({"sergino"}))
ANDRA_ADMIN = StaffMember("vk:600", moderator=False, settlements=frozenset({"andra"}))
MODERATOR = StaffMember("tg:900", moderator=True, settlements=frozenset())
STRANGER = "vk:4242"

Action = Callable[[Work, StaffMember, int], Awaitable[Outcome]]
# Every action on an appeal, its typed arguments filled in.
APPEAL_ACTIONS: dict[str, Action] = {
    "take": actions.take,
    "reply": lambda work, who, n: actions.reply(work, who, n, "Засыплем яму."),
    "ask": lambda work, who, n: actions.ask(work, who, n, "Какой номер дома?"),
    "close": lambda work, who, n: actions.close(work, who, n, "Сделано"),
    "assign": lambda work, who, n: actions.assign(work, who, n, "andra"),
    "reject": lambda work, who, n: actions.reject(work, who, n, "Дубликат"),
}
MODERATOR_ONLY = {"assign", "reject"}
IdentityAction = Callable[[Work, StaffMember], Awaitable[Outcome]]
IDENTITY_ACTIONS: dict[str, IdentityAction] = {
    "ban": lambda work, who: actions.ban(work, who, STRANGER, "спам"),
    "unban": lambda work, who: actions.unban(work, who, STRANGER),
    "add_staff": lambda work, who: actions.add_staff(work, who, STRANGER, "sergino"),
    "remove_staff": lambda work, who: actions.remove_staff(work, who, "tg:500"),
}


T = TypeVar("T")


async def act(office: Harness, run: Callable[[Work], Awaitable[T]]) -> T:
    """Run an action in a unit of work of its own, as any caller would."""
    async with office.app.db.transaction() as tx:
        return await run(Work(tx, handler_settings(office.config), office.clock()))


async def appeal_in_sergino(office: Harness) -> int:
    return await file_appeal(office.person("1001", "Иван Петров", platform="vk"))


async def state(office: Harness, number: int) -> tuple[Status, str, int]:
    """What a refused action must leave as it was: status, settlement, audit lines."""
    async with office.app.db.transaction() as tx:
        appeal = await tx.appeals.get(number)
        audit = await tx.audit.entries()
    assert appeal is not None
    return appeal.status, appeal.settlement, len(audit)


@pytest.mark.parametrize("name", APPEAL_ACTIONS)
async def test_an_administrator_of_another_settlement_is_refused(
    office: Harness, name: str
) -> None:
    number = await appeal_in_sergino(office)
    before = await state(office, number)
    outcome = await act(office, lambda work: APPEAL_ACTIONS[name](work, ANDRA_ADMIN, number))
    expected = (
        texts.MODERATOR_ONLY
        if name in MODERATOR_ONLY
        else texts.APPEAL_NOT_FOUND.format(number=number)
    )
    assert outcome == Outcome(expected)
    assert await state(office, number) == before


@pytest.mark.parametrize("name", APPEAL_ACTIONS)
async def test_a_missing_appeal_is_refused_like_a_foreign_one(office: Harness, name: str) -> None:
    outcome = await act(office, lambda work: APPEAL_ACTIONS[name](work, MODERATOR, 999))
    assert outcome == Outcome(texts.APPEAL_NOT_FOUND.format(number=999))


@pytest.mark.parametrize("name", IDENTITY_ACTIONS)
async def test_identity_actions_are_for_moderators(office: Harness, name: str) -> None:
    async with office.app.db.transaction() as tx:
        staff_before, ban_before = await tx.staff.all(), await tx.bans.get(STRANGER)
    outcome = await act(office, lambda work: IDENTITY_ACTIONS[name](work, SERGINO_ADMIN))
    assert outcome == Outcome(texts.MODERATOR_ONLY)
    async with office.app.db.transaction() as tx:
        assert await tx.staff.all() == staff_before
        assert await tx.bans.get(STRANGER) == ban_before
        assert await tx.audit.entries() == []


@pytest.mark.parametrize(
    ("name", "who", "status"),
    [
        ("take", SERGINO_ADMIN, Status.IN_PROGRESS),
        ("reply", SERGINO_ADMIN, Status.ANSWERED),
        ("ask", SERGINO_ADMIN, Status.NEW),
        ("close", SERGINO_ADMIN, Status.CLOSED),
        ("assign", MODERATOR, Status.NEW),
        ("reject", MODERATOR, Status.REJECTED),
    ],
)
async def test_appeal_actions_change_the_appeal_tell_the_resident_and_audit(
    office: Harness, name: str, who: StaffMember, status: Status
) -> None:
    number = await appeal_in_sergino(office)
    outcome = await act(office, lambda work: APPEAL_ACTIONS[name](work, who, number))
    assert outcome.done and outcome.number == number
    assert outcome.status == (None if status == Status.NEW else status)
    to_resident = [m for m in outcome.messages if (m.platform, m.chat_id) == ("vk", "1001")]
    assert len(to_resident) == 1 and f"№{number}" in to_resident[0].text
    if name == "assign":  # Андра's administrator gets the card
        assert any(m.chat_id == "600" for m in outcome.messages)
    async with office.app.db.transaction() as tx:
        appeal = await tx.appeals.get(number)
        audit = await tx.audit.entries(number)
    assert appeal is not None and appeal.status == status
    assert audit == [(who.identity, name, number)]


async def test_identity_actions_by_a_moderator(office: Harness) -> None:
    run = IDENTITY_ACTIONS
    assert await act(office, lambda work: run["ban"](work, MODERATOR)) == Outcome(
        texts.BANNED.format(identity=STRANGER), done=True
    )
    assert (await act(office, lambda work: run["unban"](work, MODERATOR))).done
    assert not (await act(office, lambda work: run["unban"](work, MODERATOR))).done
    assert (await act(office, lambda work: run["add_staff"](work, MODERATOR))).done
    assert (await act(office, lambda work: run["remove_staff"](work, MODERATOR))).done
    myself = await act(office, lambda work: actions.remove_staff(work, MODERATOR, "tg:900"))
    assert myself == Outcome(texts.CANNOT_REMOVE_SELF)
    async with office.app.db.transaction() as tx:
        assert await tx.staff.member(STRANGER) == StaffMember(
            STRANGER, moderator=False, settlements=frozenset({"sergino"})
        )
        assert await tx.staff.member("tg:500") is None
        audit = await tx.audit.entries()
    assert [action for _, action, _ in audit] == ["ban", "unban", "staff_add", "staff_remove"]
