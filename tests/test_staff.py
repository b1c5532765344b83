"""Administrators and moderators (SPEC §5, §6) working from another messenger than the
resident's: notifications, every command, authorization, bans, staff changes, audit."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.channels.base import SendError
from handlers import texts
from storage.models import Status
from tests.conftest import Harness, Person
from tests.flows import DESCRIPTION, file_appeal, to_description

ANSWER = "Яму засыплем до пятницы.\nБригада уже выехала."


@pytest.fixture
def office(office_on_each_backend: Harness) -> Harness:
    return office_on_each_backend


@pytest.fixture
def resident(office: Harness) -> Person:
    return office.person("1001", "Иван Петров", platform="vk")


@pytest.fixture
def andra_admin(office: Harness) -> Person:
    return office.person("600", "Пётр", platform="vk")


async def audit_actions(office: Harness, number: int | None = None) -> list[tuple[str, str]]:
    async with office.app.db.transaction() as tx:
        rows = await tx.audit.entries(number)
    return [(actor, action) for actor, action, _ in rows]


async def appeal_status(office: Harness, number: int) -> Status:
    async with office.app.db.transaction() as tx:
        appeal = await tx.appeals.get(number)
    assert appeal is not None
    return appeal.status


async def test_new_appeal_notifies_the_settlement(
    office: Harness, resident: Person, admin: Person, andra_admin: Person, moderator: Person
) -> None:
    number = await file_appeal(resident)
    [card] = admin.replies()
    assert card.platform == "tg" and card.chat_id == "500"
    assert card.text.startswith(f"Новое обращение №{number}")
    assert "Населённый пункт: Сергино" in card.text
    assert DESCRIPTION in card.text
    assert f"/reply {number} текст" in card.text
    assert "Ответить до: 03.03.2026 11:00" in card.text
    assert andra_admin.replies() == []
    assert moderator.replies() == []


async def test_settlement_without_admin_goes_to_moderators(
    resident: Person, moderator: Person
) -> None:
    number = await file_appeal(resident, settlement="Талинка")
    [card] = moderator.replies()
    assert "нет администратора" in card.text
    assert f"Новое обращение №{number}" in card.text


async def test_answer_from_another_messenger_reaches_only_the_resident(
    office: Harness, resident: Person, admin: Person
) -> None:
    number = await file_appeal(resident)
    admin.replies()
    confirmation = await admin.say(f"/reply №{number} {ANSWER}")
    assert [m.text for m in confirmation] == [texts.REPLIED.format(number=number)]
    [answer] = resident.replies()
    assert (answer.platform, answer.chat_id) == ("vk", "1001")
    assert answer.text.startswith(f"Ответ на обращение №{number}\n")
    assert "Администрация сельского поселения Сергино" in answer.text
    assert ANSWER in answer.text
    assert [b.label for b in answer.keyboard.buttons] == ["Вопрос решён", "Вопрос не решён"]
    carriers = [m for m in office.everything_sent() if ANSWER in m.text]
    assert carriers == [answer]
    async with office.app.db.transaction() as tx:
        appeal = await tx.appeals.get(number)
        thread = await tx.thread.of_appeal(number, kinds=("answer",))
    assert appeal is not None and appeal.status is Status.ANSWERED
    assert appeal.first_answer_at == office.clock.now
    assert [(e.author, e.text) for e in thread] == [("tg:500", ANSWER)]


async def test_quote_reply_is_a_reply(office: Harness, resident: Person, admin: Person) -> None:
    number = await file_appeal(resident)
    channel = office.channels["tg"]
    card_id = channel.sent_ids[channel.sent.index(admin.replies()[0])]
    await admin.send("Засыплем завтра.", reply_to=card_id)
    assert admin.text == texts.REPLIED.format(number=number)
    assert "Засыплем завтра." in resident.replies()[0].text
    await admin.send("Без цитаты", reply_to="no-such-message")
    assert admin.text == texts.STAFF_PLAIN_TEXT


async def test_resolved_rating_closes(office: Harness, resident: Person, admin: Person) -> None:
    number = await file_appeal(resident)
    await admin.say(f"/reply {number} {ANSWER}")
    resident.replies()
    await resident.press("Вопрос решён")
    assert texts.RATED_RESOLVED.format(number=number) in resident.text
    assert await appeal_status(office, number) is Status.CLOSED
    await resident.send(payload=f"rate:{number}:no")
    assert texts.ALREADY_RATED.format(number=number) in resident.text


async def test_unresolved_reopens_and_tells_staff(
    office: Harness, resident: Person, admin: Person, moderator: Person
) -> None:
    number = await file_appeal(resident)
    await admin.say(f"/reply {number} {ANSWER}")
    resident.replies()
    admin.replies()
    await resident.say("вопрос не решён")  # typed label
    assert texts.RATED_UNRESOLVED.format(number=number) in resident.text
    assert await appeal_status(office, number) is Status.IN_PROGRESS
    notice = texts.UNRESOLVED_TO_STAFF.format(number=number)
    assert [m.text for m in admin.replies()] == [notice]
    assert [m.text for m in moderator.replies()] == [notice]
    # a second answer may be rated again
    await admin.say(f"/reply {number} Сделано.")
    await resident.press("Вопрос решён")
    assert await appeal_status(office, number) is Status.CLOSED


async def test_forged_rating_is_refused(office: Harness, resident: Person, admin: Person) -> None:
    number = await file_appeal(resident)
    other = office.person("2002", platform="vk")
    await other.send(payload=f"rate:{number}:no")
    assert texts.HINT_STALE_BUTTON in other.text
    await resident.send(payload=f"rate:{number}:yes")  # not answered yet
    assert texts.HINT_STALE_BUTTON in resident.text
    assert await appeal_status(office, number) is Status.NEW


async def test_take_tells_the_resident(office: Harness, resident: Person, admin: Person) -> None:
    number = await file_appeal(resident)
    await admin.say(f"/take {number}")
    assert admin.text == texts.TAKEN.format(number=number)
    assert "взято в работу: Администрация сельского поселения Сергино" in resident.replies()[0].text
    assert await appeal_status(office, number) is Status.IN_PROGRESS
    await admin.say(f"/take {number}")
    assert admin.text == texts.ALREADY_IN_PROGRESS.format(number=number)


async def test_ask_routes_the_next_message_back(
    office: Harness, resident: Person, admin: Person
) -> None:
    number = await file_appeal(resident)
    await admin.say(f"/ask {number} Какой номер дома?")
    assert "Какой номер дома?" in resident.replies()[0].text
    admin.replies()
    await resident.say("Дом 5, у подъезда")
    assert texts.QUESTION_ANSWER_ACCEPTED.format(number=number) in resident.text
    [forwarded] = admin.replies()
    assert forwarded.text == texts.RESIDENT_REPLY_TO_STAFF.format(
        number=number, text="Дом 5, у подъезда"
    )
    async with office.app.db.transaction() as tx:
        kinds = [e.kind for e in await tx.thread.of_appeal(number)]
    assert kinds == ["created", "question", "reply"]
    await resident.say("Ещё одно сообщение")  # the question is answered: an addition offer
    assert resident.labels[0] == f"Дополнить №{number}"


async def test_addition_is_forwarded(office: Harness, resident: Person, admin: Person) -> None:
    number = await file_appeal(resident)
    admin.replies()
    await resident.say("Там ещё и фонарь не горит")
    await resident.press(f"Дополнить №{number}")
    [forwarded] = admin.replies()
    assert "Там ещё и фонарь не горит" in forwarded.text
    assert forwarded.appeal_number == number


async def test_close_with_a_comment(office: Harness, resident: Person, admin: Person) -> None:
    number = await file_appeal(resident)
    await admin.say(f"/close {number} Дубль обращения №3")
    assert admin.text == texts.CLOSED.format(number=number)
    assert "Комментарий: Дубль обращения №3" in resident.replies()[0].text
    assert await appeal_status(office, number) is Status.CLOSED
    await admin.say(f"/reply {number} поздно")
    assert "уже закрыто;" in admin.text  # lower case mid-sentence


async def test_admin_sees_only_own_settlements(
    office: Harness, resident: Person, admin: Person, andra_admin: Person
) -> None:
    number = await file_appeal(resident)  # Сергино
    for command in (
        f"/show {number}",
        f"/take {number}",
        f"/reply {number} x",
        f"/ask {number} x",
        f"/close {number}",
    ):
        await andra_admin.say(command)
        assert andra_admin.text == texts.APPEAL_NOT_FOUND.format(number=number)
    await andra_admin.say("/show 999")
    assert andra_admin.text == texts.APPEAL_NOT_FOUND.format(number=999)  # the same words
    assert await appeal_status(office, number) is Status.NEW
    assert DESCRIPTION not in "\n".join(m.text for m in andra_admin.channel.sent_to("600"))


async def test_arguments_are_parsed_strictly(resident: Person, admin: Person) -> None:
    number = await file_appeal(resident)
    for command, usage in [
        ("/reply", "reply"),
        (f"/reply {number}", "reply"),
        ("/take abc", "take"),
        (f"/take {number} сейчас", "take"),
        (f"/take {number}x", "take"),
        ("/list everything", "list"),
        ("/ask", "ask"),
        ("/show", "show"),
    ]:
        await admin.say(command)
        assert admin.text == texts.USAGE_PREFIX.format(usage=texts.USAGE[usage]), command
    await admin.say(f"/show №{number}")
    assert admin.text.startswith(f"Обращение №{number}")
    await admin.say("/frobnicate")
    assert admin.text == texts.UNKNOWN_STAFF_COMMAND


async def test_list_filters(office: Harness, resident: Person, admin: Person) -> None:
    first = await file_appeal(resident)
    second = await file_appeal(resident, "Не горит фонарь на остановке у школы")
    await file_appeal(resident, "Не вывозят мусор третью неделю подряд", settlement="Андра")
    await admin.say(f"/take {second}")
    await admin.say("/list")
    assert admin.text.splitlines()[0] == "Обращения (не отвеченные): 2"
    await admin.say("/list work")
    assert [line.split(" ·")[0] for line in admin.text.splitlines()[1:]] == [f"№{second}"]
    await admin.say("/list new")
    assert [line.split(" ·")[0] for line in admin.text.splitlines()[1:]] == [f"№{first}"]
    await admin.say("/list answered")
    assert admin.text == texts.LIST_EMPTY.format(filter="отвеченные")
    office.clock.advance(hours=25)
    await admin.say("/list overdue")
    assert admin.text.splitlines()[0] == "Обращения (просроченные): 2"


async def test_residents_cannot_use_staff_commands(resident: Person) -> None:
    number = await file_appeal(resident)
    for command in (f"/reply {number} сам себе отвечу", "/stats", "/ban vk:1"):
        await resident.say(command)
        assert texts.COMMAND_UNAVAILABLE in resident.text


async def test_moderator_commands_are_for_moderators(resident: Person, admin: Person) -> None:
    number = await file_appeal(resident)
    for command in (
        f"/assign {number} andra",
        f"/reject {number} спам",
        "/stats",
        "/overdue",
        "/staff list",
        "/ban vk:1",
        "/unban vk:1",
    ):
        await admin.say(command)
        assert admin.text == texts.MODERATOR_ONLY, command
    await admin.say("/help")
    assert "/reply" in admin.text and "/assign" not in admin.text


async def test_assign_hands_over(
    office: Harness, resident: Person, admin: Person, andra_admin: Person, moderator: Person
) -> None:
    number = await file_appeal(resident)
    admin.replies()
    await moderator.say(f"/assign {number} andra")
    assert moderator.text == texts.ASSIGNED.format(number=number, settlement="Андра")
    [card] = andra_admin.replies()
    assert card.text.startswith(f"Обращение №{number} передано вашему поселению")
    assert "передано для рассмотрения: Администрация городского поселения Андра" in (
        resident.replies()[0].text
    )
    await admin.say(f"/show {number}")
    assert admin.text == texts.APPEAL_NOT_FOUND.format(number=number)
    await moderator.say(f"/assign {number} atlantis")
    assert "Нет поселения с кодом «atlantis»" in moderator.text
    await moderator.say(f"/assign {number} andra")
    assert "уже относится" in moderator.text


async def test_reject_tells_the_resident(
    office: Harness, resident: Person, moderator: Person
) -> None:
    number = await file_appeal(resident)
    await moderator.say(f"/reject {number} реклама")
    assert moderator.text == texts.REJECTED.format(number=number)
    assert "Причина: реклама" in resident.replies()[0].text
    assert await appeal_status(office, number) is Status.REJECTED
    await moderator.say(f"/reject {number}")
    assert moderator.text == texts.USAGE_PREFIX.format(usage=texts.USAGE["reject"])


async def test_ban_and_unban(office: Harness, resident: Person, moderator: Person) -> None:
    await moderator.say("/ban vk:1001 спам")
    assert moderator.text == texts.BANNED.format(identity="vk:1001")
    replies = await resident.say("Подать обращение")
    assert [m.text for m in replies] == [
        texts.BANNED_NOTICE.format(formal_url=office.config.bot.formal_appeal_url)
    ]
    assert await resident.say("Подать обращение") == []  # ignored from now on
    assert await resident.say("Согласен") == []
    async with office.app.db.transaction() as tx:
        assert await tx.drafts.get("vk", "1001") is None
    await moderator.say("/unban vk:1001")
    assert moderator.text == texts.UNBANNED.format(identity="vk:1001")
    await resident.say("Подать обращение")
    assert "Согласие на обработку" in resident.text
    await moderator.say("/ban tg:500")
    assert "сотрудник" in moderator.text
    await moderator.say("/ban нечто")
    assert "Идентификатор пишется как платформа:id" in moderator.text
    await moderator.say("/unban vk:777")
    assert moderator.text == texts.NOT_BANNED.format(identity="vk:777")


async def test_staff_changes_and_config_seeds(
    office: Harness, resident: Person, moderator: Person
) -> None:
    await moderator.say("/staff add talinka ok:42")
    assert moderator.text == texts.STAFF_ADDED.format(
        identity="ok:42", role="администратор: Талинка"
    )
    await moderator.say("/staff add talinka ok:42")
    assert "уже" in moderator.text
    await moderator.say("/staff list")
    assert "• ok:42 — Талинка" in moderator.text
    assert "• tg:500 — Сергино (из файла настроек)" in moderator.text
    await moderator.say("/staff remove tg:500")
    assert texts.STAFF_REMOVED_CONFIG in moderator.text
    await moderator.say("/staff remove tg:900")
    assert moderator.text == texts.CANNOT_REMOVE_SELF
    await moderator.say("/staff promote ok:42")
    assert moderator.text == texts.USAGE_PREFIX.format(usage=texts.USAGE["staff"])

    await file_appeal(resident, settlement="Талинка")
    async with office.app.db.transaction() as tx:  # no OK channel here: the card waits
        rows = await tx.outbox.due_heads(office.clock.now, ["ok"], 10)
    assert [r.chat_id for r in rows] == ["42"]  # the new admin is notified on OK

    await office.restart()  # config seeds re-applied; command rows kept
    async with office.app.db.transaction() as tx:
        staff = {(r.identity, r.settlement, r.source) for r in await tx.staff.all()}
    assert ("tg:500", "sergino", "config") in staff
    assert ("ok:42", "talinka", "command") in staff


async def test_stats_and_overdue(office: Harness, resident: Person, moderator: Person) -> None:
    await file_appeal(resident)
    await file_appeal(resident, "Не вывозят мусор третью неделю подряд", settlement="Андра")
    await moderator.say("/stats 01.03.2026 2026-03-31")
    lines = moderator.text.splitlines()
    assert lines[0] == "Обращения с 01.03.2026 по 31.03.2026: 2"
    assert "  Новое: 2" in lines
    assert "  Дороги: 2" in lines
    assert "  Сергино: 1" in lines and "  Андра: 1" in lines
    await moderator.say("/stats 01.02.2026 28.02.2026")
    assert moderator.text.endswith(": 0")
    await moderator.say("/stats вчера")
    assert "Не понимаю дату «вчера»" in moderator.text
    await moderator.say("/stats 31.03.2026 01.03.2026")
    assert texts.BAD_PERIOD in moderator.text
    await moderator.say("/overdue")
    assert moderator.text == texts.OVERDUE_EMPTY
    office.clock.advance(hours=24, seconds=1)
    await moderator.say("/overdue")
    assert moderator.text.splitlines()[0] == "Просроченные обращения: 2"


async def test_staff_start_gets_staff_help(admin: Person, moderator: Person) -> None:
    await admin.say("Начать")
    assert "администратор: Сергино" in admin.text and "/reply" in admin.text
    assert admin.labels == []
    await moderator.say("/start")
    assert "модератор района" in moderator.text and "/assign" in moderator.text
    await admin.say("просто текст")
    assert admin.text == texts.STAFF_PLAIN_TEXT


async def test_every_staff_action_is_audited(
    office: Harness, resident: Person, admin: Person, moderator: Person
) -> None:
    number = await file_appeal(resident)
    for command in (
        f"/show {number}",
        f"/take {number}",
        f"/ask {number} Где?",
        f"/reply {number} Готово",
        f"/close {number}",
    ):
        await admin.say(command)
    second = await file_appeal(resident, "Не горит фонарь на остановке у школы")
    for command in (
        f"/assign {second} andra",
        f"/reject {second} дубль",
        "/ban vk:5 спам",
        "/unban vk:5",
        "/staff add andra vk:7",
        "/staff remove vk:7",
        "/stats",
        "/overdue",
        "/list",
    ):
        await moderator.say(command)
    assert await audit_actions(office, number) == [
        ("tg:500", "show"),
        ("tg:500", "take"),
        ("tg:500", "ask"),
        ("tg:500", "reply"),
        ("tg:500", "close"),
    ]
    assert await audit_actions(office, second) == [("tg:900", "assign"), ("tg:900", "reject")]
    all_actions = [action for actor, action in await audit_actions(office) if actor == "tg:900"]
    assert all_actions == [
        "assign",
        "reject",
        "ban",
        "unban",
        "staff_add",
        "staff_remove",
        "stats",
        "overdue",
        "list",
    ]


async def test_unreachable_official_goes_to_moderators(
    office: Harness, resident: Person, admin: Person, moderator: Person
) -> None:
    office.channels["tg"].failures["500"] = SendError(
        "bot was blocked by the user", retryable=False
    )
    number = await file_appeal(resident)
    [report] = moderator.replies()
    assert f"по обращению №{number} сотруднику tg:500" in report.text
    assert "bot was blocked by the user" in report.text
    assert f"Новое обращение №{number}" in report.text  # the card itself is passed on


async def test_failed_reports_do_not_chain(office: Harness, resident: Person) -> None:
    tg = office.channels["tg"]
    for chat in ("500", "900"):  # the admin and the only moderator are both unreachable
        tg.failures[chat] = SendError("chat not found", retryable=False)
    await file_appeal(resident)
    async with office.app.db.transaction() as tx:
        failed, pending = await tx.outbox.count("failed"), await tx.outbox.count("pending")
    assert (failed, pending) == (2, 0)  # the card, and the one report about it


async def test_unreachable_resident_is_reported(
    office: Harness, resident: Person, admin: Person, moderator: Person
) -> None:
    number = await file_appeal(resident)
    office.channels["vk"].failures["1001"] = SendError("user blocked the bot", retryable=False)
    await admin.say(f"/reply {number} Готово")
    [report] = moderator.replies()
    assert f"жителю (vk:1001) сообщение по обращению №{number}" in report.text
    assert "Готово" in report.text


# --- issue 14 ------------------------------------------------------------------------------


async def test_invisible_answers_and_questions_are_refused(
    office: Harness, resident: Person, admin: Person
) -> None:
    """Item 11: `/reply N` or `/ask N` with nothing visible is no answer, no question."""
    number = await file_appeal(resident)
    resident.replies()
    channel = office.channels["tg"]
    card_id = channel.sent_ids[channel.sent.index(admin.replies()[0])]
    for command in ("reply", "ask"):
        await admin.say(f"/{command} {number} \u200b\u200b")
        assert admin.text == texts.USAGE_PREFIX.format(usage=texts.USAGE[command])
    await admin.send("\u200b\u2060\u200d", reply_to=card_id)  # an invisible quote-reply
    assert admin.text == texts.STAFF_PLAIN_TEXT
    assert resident.replies() == []
    assert await appeal_status(office, number) is Status.NEW
    await admin.say("/list")
    assert admin.text.splitlines()[0] == "Обращения (не отвеченные): 1"


async def test_bidi_controls_do_not_reach_staff(
    office: Harness, resident: Person, admin: Person
) -> None:
    """Item 11: a name (or text) with a right-to-left override reads as written."""
    person = office.person("1002", "\u202eПётр", platform="vk")
    await to_description(person)
    await person.say("Яма \u202eвозле дома\u202c номер 5 у школы")
    await person.press("Пропустить")  # place
    await person.press("Пропустить")  # photos
    await person.press("Оставить как есть")  # the name from the profile
    await person.press("Пропустить")  # phone
    await person.press("Отправить")
    [card] = admin.replies()
    assert "\u202e" not in card.text and "\u202c" not in card.text
    assert "Текст: Яма возле дома номер 5 у школы" in card.text
    assert "Контакт: Пётр\n" in card.text
    await person.say("Ещё: \u202eяма растёт")
    await person.press("Дополнить №1")
    [addition] = admin.replies()
    assert addition.text.endswith("Ещё: яма растёт")


async def test_contact_is_said_once(office: Harness, resident: Person, admin: Person) -> None:
    number = await file_appeal(resident)
    [card] = admin.replies()
    assert texts.CARD_NO_CONTACT in card.text and "не указано, не указано" not in card.text
    await resident.say("Подать обращение")
    await resident.press("Дороги")
    await resident.press("Сергино")
    await resident.say(DESCRIPTION)
    await resident.press("Пропустить")
    await resident.press("Пропустить")
    await resident.press("Пропустить")  # no name
    await resident.say("+7 912 345-67-89")
    await resident.press("Отправить")
    assert "Контакт: +79123456789\n" in admin.replies()[0].text
    await admin.say(f"/show {number}")


async def test_show_of_a_closed_appeal_offers_no_reply(
    office: Harness, resident: Person, admin: Person
) -> None:
    number = await file_appeal(resident)
    await admin.say(f"/show {number}")
    assert f"/reply {number}" in admin.text
    await admin.say(f"/close {number}")
    await admin.say(f"/show {number}")
    assert f"/reply {number}" not in admin.text and f"/take {number}" not in admin.text
    assert texts.CARD_FINISHED.format(status="закрыто") in admin.text


async def test_rating_typed_with_e_for_yo(office: Harness, resident: Person, admin: Person) -> None:
    """Item 12: «вопрос решен» is «Вопрос решён»."""
    number = await file_appeal(resident)
    await admin.say(f"/reply {number} Засыпали.")
    await resident.say("вопрос решен")
    assert texts.RATED_RESOLVED.format(number=number) in resident.text
    assert await appeal_status(office, number) is Status.CLOSED


async def make_appeals(
    office: Harness, count: int, settlement: str = "sergino", *, later: int = 0
) -> list[int]:
    """`count` appeals written straight to the database, a minute apart (oldest first),
    from `later` minutes on."""
    now = office.clock.now + timedelta(minutes=later)
    async with office.app.db.transaction() as tx:
        resident = await tx.residents.get_or_create("vk", "3001", "3001", now)
        numbers = []
        for i in range(count):
            created = now + timedelta(minutes=i)
            appeal = await tx.appeals.create(
                resident_id=resident.id,
                category="roads",
                settlement=settlement,
                text=f"Обращение {i}",
                place=None,
                latitude=None,
                longitude=None,
                photos=(),
                contact_name=None,
                contact_phone=None,
                platform="vk",
                chat_id="3001",
                created_at=created,
                deadline_at=created + timedelta(hours=24),
            )
            numbers.append(appeal.number)
    return numbers


def numbers_listed(person: Person) -> list[int]:
    return [int(line[1:].split()[0]) for line in person.text.splitlines() if line[:1] == "№"]


async def test_lists_page_through_everything(
    office: Harness, admin: Person, moderator: Person
) -> None:
    """Item 17: a list is a page at a time, with «Ещё» (pressed or typed) and the command
    for the next page; every appeal is shown once."""
    sergino = await make_appeals(office, 65)
    andra = await make_appeals(office, 5, settlement="andra", later=65)
    await moderator.say("/list all")
    assert moderator.text.splitlines()[0] == "Обращения (все): 70"
    assert moderator.labels == ["Ещё"]
    last = numbers_listed(moderator)[-1]
    assert moderator.text.splitlines()[-1] == texts.LIST_NEXT.format(
        command="/list all", after=last
    )
    seen = numbers_listed(moderator)
    await moderator.press("Ещё")
    seen += numbers_listed(moderator)
    await moderator.say("Ещё")
    seen += numbers_listed(moderator)
    assert moderator.labels == [] and "Ещё" not in moderator.text
    assert seen == sorted(sergino + andra, reverse=True)  # «all»: the latest first

    await admin.say("/list")  # not answered, the most urgent first; Сергино only
    assert admin.text.splitlines()[0] == "Обращения (не отвеченные): 65"
    page = numbers_listed(admin)
    assert page == sergino[:30]
    await admin.say(f"/list после №{page[-1]}")
    assert numbers_listed(admin) == sergino[30:60]
    await admin.say(f"/list после {andra[0]}")  # not an appeal of Сергино
    assert admin.text == texts.APPEAL_NOT_FOUND.format(number=andra[0])
    await admin.say("/list после")
    assert admin.text == texts.USAGE_PREFIX.format(usage=texts.USAGE["list"])


async def test_overdue_pages_too(office: Harness, moderator: Person) -> None:
    numbers = await make_appeals(office, 35)
    office.clock.advance(days=2)
    await moderator.say("/overdue")
    assert moderator.text.splitlines()[0] == "Просроченные обращения: 35"
    assert numbers_listed(moderator) == numbers[:30]
    await moderator.press("Ещё")
    assert numbers_listed(moderator) == numbers[30:]
    await moderator.say(f"/overdue после {numbers[-1]}")
    assert moderator.text == texts.LIST_END.format(filter="просроченные")


async def test_list_counts_up_to_a_limit(
    office: Harness, moderator: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    import handlers.staff.views

    monkeypatch.setattr(handlers.staff.views, "COUNT_UP_TO", 5)
    await make_appeals(office, 6)
    await moderator.say("/list all")
    assert moderator.text.splitlines()[0] == "Обращения (все): больше 5"
    await moderator.say("/list new")
    assert moderator.text.splitlines()[0] == "Обращения (новые): больше 5"


async def test_a_question_answered_while_an_offer_is_open_keeps_the_offer(
    office: Harness, resident: Person, admin: Person
) -> None:
    """Item 5: what the addition offer keeps survives an official's question in between."""
    number = await file_appeal(resident)
    await resident.say("Там ещё и фонарь не горит")
    await admin.say(f"/ask {number} Какой номер дома?")
    await resident.say("Дом 5")
    assert texts.QUESTION_ANSWER_ACCEPTED.format(number=number) in resident.text
    assert texts.ADDITION_OFFER in resident.text
    await resident.press(f"Дополнить №{number}")
    async with office.app.db.transaction() as tx:
        thread = await tx.thread.of_appeal(number)
    assert [(e.kind, e.text) for e in thread[1:]] == [
        ("question", "Какой номер дома?"),
        ("reply", "Дом 5"),
        ("addition", "Там ещё и фонарь не горит"),
    ]
