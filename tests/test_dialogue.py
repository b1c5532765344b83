"""The resident dialogue of SPEC §4, driven through an in-memory channel on a real database."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import Config
from handlers import texts
from storage.models import Draft, Photo, Status
from tests.conftest import Harness, Person, make_config
from tests.flows import DESCRIPTION, file_appeal, to_description


@pytest.fixture
def config(storage_url: str) -> Config:
    """The dialogue on each backend (SQLite; PostgreSQL where APPEALS_TEST_POSTGRES_URL names
    a server, SPEC §15)."""
    return make_config(storage_url)


async def test_happy_path_stores_every_field(harness: Harness, resident: Person) -> None:
    replies = await resident.say("Здравствуйте")
    assert "канал обратной связи" in replies[0].text
    assert resident.labels == ["Подать обращение", "Мои обращения", "Справка"]

    await resident.press("Подать обращение")
    assert "Согласие на обработку персональных данных" in resident.text
    assert harness.config.bot.privacy_policy_url in resident.text
    await resident.press("Согласен")
    assert resident.labels[-1] == "Отмена" and "Дороги" in resident.labels
    await resident.press("Дороги")
    assert resident.labels[-2:] == ["Назад", "Отмена"]
    await resident.press("Сергино")
    await resident.send(DESCRIPTION, photos=(Photo("vk", "photo1_2", "https://vk.example/1.jpg"),))
    assert "Укажите адрес" in resident.text
    await resident.say("ул. Центральная, 5")
    await resident.send(photos=(Photo("vk", "photo1_3", "https://vk.example/2.jpg"),))
    assert "Фото добавлено (2 из 5)" in resident.text
    await resident.press("Готово")
    assert "Иван Петров" in resident.text
    await resident.press("Оставить как есть")
    await resident.say("8 (912) 345-67-89")
    assert "Проверьте обращение" in resident.text
    assert "Телефон: +79123456789" in resident.text
    await resident.press("Отправить")
    assert "Обращение №1 зарегистрировано" in resident.text
    # 06:00 UTC + 24 h, shown in Asia/Yekaterinburg (UTC+5)
    assert "03.03.2026 11:00" in resident.text
    assert resident.labels == ["Подать обращение", "Мои обращения", "Справка"]

    async with harness.app.db.transaction() as tx:
        appeal = await tx.appeals.get(1)
        stored_resident = await tx.residents.find("vk", "1001")
        thread = await tx.thread.of_appeal(1)
        draft = await tx.drafts.get("vk", "1001")
        pending = await tx.outbox.count("pending")
        sent = await tx.outbox.count("sent")
    assert appeal is not None and stored_resident is not None
    assert appeal.status is Status.NEW
    assert appeal.category == "roads"
    assert appeal.settlement == "sergino"
    assert appeal.text == DESCRIPTION
    assert appeal.place == "ул. Центральная, 5"
    assert (appeal.latitude, appeal.longitude) == (None, None)
    assert [p.ref for p in appeal.photos] == ["photo1_2", "photo1_3"]
    assert appeal.contact_name == "Иван Петров"
    assert appeal.contact_phone == "+79123456789"
    assert (appeal.platform, appeal.chat_id) == ("vk", "1001")
    assert appeal.resident_id == stored_resident.id
    assert appeal.created_at == harness.clock.now
    assert appeal.deadline_at - appeal.created_at == timedelta(hours=24)
    assert stored_resident.consent_version == harness.config.bot.privacy_policy_version
    assert stored_resident.display_name == "Иван Петров"
    assert [e.kind for e in thread] == ["created"]
    assert draft is None
    assert (pending, sent) == (0, 12)  # one reply per message, all delivered


async def test_typed_labels_and_numbers_press_buttons(resident: Person) -> None:
    await resident.say("меню")
    await resident.say("  подать ОБРАЩЕНИЕ ")
    await resident.say("1")  # Согласен
    await resident.say("3")  # the third category: Дороги
    assert "населённый пункт" in resident.text
    await resident.say("сергино")
    assert "Опишите проблему" in resident.text


async def test_number_is_text_on_free_text_steps(harness: Harness, resident: Person) -> None:
    await to_description(resident)
    await resident.say(DESCRIPTION)
    await resident.say("2")  # a house number, not the second button
    assert "Приложите фото" in resident.text
    async with harness.app.db.transaction() as tx:
        draft = await tx.drafts.get("vk", "1001")
    assert draft is not None and draft.data["place"] == "2"


async def test_location_as_place(harness: Harness, resident: Person) -> None:
    from handlers.messages import Location

    await to_description(resident)
    await resident.say(DESCRIPTION)
    await resident.send(location=Location(62.4536, 65.0489))
    await resident.press("Пропустить")
    await resident.press("Пропустить")
    await resident.press("Пропустить")
    assert "Геопозиция: 62.453600, 65.048900" in resident.text
    await resident.press("Отправить")
    async with harness.app.db.transaction() as tx:
        appeal = await tx.appeals.get(1)
    assert appeal is not None
    assert (appeal.latitude, appeal.longitude, appeal.place) == (62.4536, 65.0489, None)


async def test_back_keeps_what_was_entered(harness: Harness, resident: Person) -> None:
    await to_description(resident)
    await resident.say(DESCRIPTION)
    await resident.say("ул. Лесная, 1")
    await resident.press("Назад")  # photos -> place
    assert "Укажите адрес" in resident.text
    await resident.press("Назад")  # place -> description
    await resident.press("Назад")  # description -> settlement
    await resident.press("Назад")  # settlement -> category
    assert "Выберите тему" in resident.text
    await resident.press("Транспорт")
    await resident.press("Андра")
    async with harness.app.db.transaction() as tx:
        draft = await tx.drafts.get("vk", "1001")
    assert draft is not None
    assert draft.step == "description"
    assert draft.data["category"] == "transport"
    assert draft.data["description"] == DESCRIPTION
    assert draft.data["place"] == "ул. Лесная, 1"


async def test_cancel_at_any_step_drops_the_draft(harness: Harness, resident: Person) -> None:
    for cancel in ("press", "Отмена", "/cancel"):
        await to_description(resident)
        await resident.say(DESCRIPTION)
        if cancel == "press":
            await resident.press("Отмена")
        else:
            await resident.say(cancel)
        assert texts.CANCELLED in resident.text
        assert resident.labels == ["Подать обращение", "Мои обращения", "Справка"]
        async with harness.app.db.transaction() as tx:
            assert await tx.drafts.get("vk", "1001") is None
            assert await tx.appeals.get(1) is None


async def test_refusing_consent_creates_nothing(harness: Harness, resident: Person) -> None:
    await resident.say("Подать обращение")
    await resident.press("Не согласен")
    assert texts.CONSENT_REFUSED in resident.text
    async with harness.app.db.transaction() as tx:
        stored = await tx.residents.find("vk", "1001")
    assert stored is not None
    assert stored.consent_at is None and stored.display_name is None
    await resident.say("Подать обращение")
    assert "Согласие на обработку" in resident.text  # asked again after a refusal


async def test_consent_is_asked_once(resident: Person) -> None:
    await file_appeal(resident)
    await resident.press("Подать обращение")
    assert "Выберите тему" in resident.text


async def test_resume_after_restart(harness: Harness, resident: Person) -> None:
    await to_description(resident)
    await resident.say(DESCRIPTION)
    await harness.restart()
    await resident.say("ул. Садовая, 3")  # continues where it stopped
    assert "Приложите фото" in resident.text


async def test_resume_a_day_later_offers_continue(harness: Harness, resident: Person) -> None:
    await to_description(resident)
    await resident.say(DESCRIPTION)
    await harness.restart()
    harness.clock.advance(days=1)
    await resident.say("Привет")
    assert "незавершённое обращение" in resident.text
    assert "адрес" in resident.text
    assert resident.labels == ["Продолжить", "Начать заново", "Отмена"]
    await resident.press("Продолжить")
    assert "Укажите адрес" in resident.text
    await resident.say("Начать")
    await resident.press("Начать заново")
    assert "Выберите тему" in resident.text


async def test_expired_draft_is_dropped(harness: Harness, resident: Person) -> None:
    await to_description(resident)
    harness.clock.advance(days=harness.config.limits.draft_ttl_days, seconds=1)
    await resident.say("Начать")
    assert "Незавершённое обращение удалено" in resident.text
    assert resident.labels == ["Подать обращение", "Мои обращения", "Справка"]


async def test_housekeeping_purges_expired_drafts(harness: Harness, resident: Person) -> None:
    await to_description(resident)
    assert await harness.app.purge_expired_drafts() == 0
    harness.clock.advance(days=harness.config.limits.draft_ttl_days + 1)
    assert await harness.app.purge_expired_drafts() == 1


async def test_description_length_limits(harness: Harness, resident: Person) -> None:
    limits = harness.config.limits
    await to_description(resident)
    await resident.say("Яма")
    assert "Слишком коротко: 3 из минимум" in resident.text
    await resident.say("у дома 5 на углу")  # added to what was kept
    async with harness.app.db.transaction() as tx:
        draft = await tx.drafts.get("vk", "1001")
    assert draft is not None and draft.data["description"] == "Яма\nу дома 5 на углу"
    await resident.press("Назад")
    await resident.say("х" * (limits.max_description + 1))
    assert f"максимуме {limits.max_description}" in resident.text
    await resident.say("\u200b" * 50)  # zero-width only: nothing visible
    assert "Слишком коротко: 0" in resident.text


async def test_phone_validation(harness: Harness, resident: Person) -> None:
    await to_description(resident)
    await resident.say(DESCRIPTION)
    for _ in range(3):
        await resident.press("Пропустить")
    for wrong in ("12345", "+1 212 555 0100", "8 (712) 345-67-89", "телефон"):
        await resident.say(wrong)
        assert texts.PHONE_INVALID in resident.text
    await resident.say("9123456789")
    assert "Телефон: +79123456789" in resident.text


async def test_unexpected_input_gets_a_hint_and_the_question(resident: Person) -> None:
    await resident.say("Подать обращение")
    await resident.press("Согласен")
    await resident.send(unsupported=True)  # a sticker
    assert texts.HINT_UNSUPPORTED in resident.text and "Выберите тему" in resident.text
    await resident.say("что-то своё")
    assert texts.HINT_CHOOSE in resident.text and "Выберите тему" in resident.text
    await resident.send(payload="st:sergino")  # a button of another step
    assert texts.HINT_STALE_BUTTON in resident.text and "Выберите тему" in resident.text
    await resident.send(payload="cat:nonexistent")  # a forged payload
    assert texts.HINT_STALE_BUTTON in resident.text
    await resident.say("/list")
    assert texts.COMMAND_UNAVAILABLE in resident.text
    await resident.say("/nonsense")
    assert texts.HINT_UNKNOWN_COMMAND in resident.text
    await resident.press("Дороги")
    assert "населённый пункт" in resident.text


async def test_old_menu_button_mid_dialogue(resident: Person) -> None:
    await to_description(resident)
    await resident.send(payload="menu:mine")
    assert texts.NO_APPEALS in resident.text and "Опишите проблему" in resident.text
    await resident.send(payload="menu:new")
    assert "незавершённое обращение" in resident.text


async def test_my_appeals_newest_first(harness: Harness, resident: Person) -> None:
    await resident.say("Мои обращения")
    assert texts.NO_APPEALS in resident.text
    first = await file_appeal(resident)
    second = await file_appeal(resident, "Не горит фонарь на остановке у школы")
    async with harness.app.db.transaction() as tx:
        await tx.thread.add(
            first, kind="answer", author="vk:1", now=harness.clock.now, text="Яму засыпали."
        )
        await tx.appeals.set_status(first, Status.ANSWERED, harness.clock.now)
    await resident.press("Мои обращения")
    lines = resident.text.splitlines()
    assert lines[1].startswith(f"№{second} от 02.03.2026 · Дороги · Сергино · Новое")
    assert lines[2].startswith(f"№{first} ") and "Отвечено" in lines[2]
    assert lines[3] == "  Ответ: Яму засыпали."


async def test_addition_to_an_open_appeal(harness: Harness, resident: Person) -> None:
    number = await file_appeal(resident)
    await resident.send("Ещё там нет освещения", photos=(Photo("vk", "p9", None),))
    assert resident.labels == [f"Дополнить №{number}", "Новое обращение", "Отмена"]
    await resident.press(f"Дополнить №{number}")
    assert f"Дополнение к обращению №{number} принято" in resident.text
    async with harness.app.db.transaction() as tx:
        thread = await tx.thread.of_appeal(number)
    assert [e.kind for e in thread] == ["created", "addition"]
    assert thread[1].text == "Ещё там нет освещения"
    assert [p.ref for p in thread[1].photos] == ["p9"]


async def test_addition_offer_leads_to_a_new_appeal(resident: Person) -> None:
    await file_appeal(resident)
    await resident.say("И ещё вопрос про автобус")
    await resident.press("Новое обращение")
    assert "Выберите тему" in resident.text


async def test_addition_refused_for_a_closed_appeal(harness: Harness, resident: Person) -> None:
    number = await file_appeal(resident)
    await resident.say("Дополнение")
    async with harness.app.db.transaction() as tx:
        await tx.appeals.set_status(number, Status.CLOSED, harness.clock.now)
    await resident.press(f"Дополнить №{number}")
    assert texts.ADDITION_CLOSED.format(number=number) in resident.text


async def test_forget_erases_name_and_phone(harness: Harness, resident: Person) -> None:
    await to_description(resident)
    await resident.say(DESCRIPTION)
    await resident.press("Пропустить")
    await resident.press("Пропустить")
    await resident.press("Оставить как есть")
    await resident.say("+79123456789")
    await resident.press("Отправить")
    await resident.say("/forget")
    assert "Отозвать согласие" in resident.text
    await resident.press("Да, удалить")
    assert texts.FORGOTTEN in resident.text
    async with harness.app.db.transaction() as tx:
        appeal = await tx.appeals.get(1)
        stored = await tx.residents.find("vk", "1001")
        audit = await tx.audit.entries()
    assert appeal is not None and stored is not None
    assert (appeal.contact_name, appeal.contact_phone) == (None, None)
    assert appeal.text == DESCRIPTION  # the appeal itself stays, anonymised
    assert stored.consent_at is None and stored.display_name is None
    assert ("vk:1001", "consent_withdrawn", None) in audit
    await resident.say("Подать обращение")
    assert "Согласие на обработку" in resident.text


async def test_forget_from_help(resident: Person) -> None:
    await resident.say("Справка")
    assert "59-ФЗ" in resident.text and "pos.gosuslugi.ru" in resident.text
    await resident.press("Удалить мои данные")
    await resident.press("Отмена")
    assert "канал обратной связи" in resident.text


async def test_residents_are_kept_apart(harness: Harness) -> None:
    alice, bob = harness.person("1"), harness.person("2")
    await to_description(alice)
    await bob.say("Мои обращения")
    await alice.say(DESCRIPTION)
    assert "Укажите адрес" in alice.text
    assert texts.NO_APPEALS in bob.text


async def test_a_broken_draft_is_dropped_after_failing_twice(
    harness: Harness, resident: Person, db_path: Path
) -> None:
    import asyncio
    import sqlite3

    await to_description(resident)

    def corrupt() -> None:  # a draft no version of the dialogue can read
        with sqlite3.connect(db_path, timeout=10) as raw:
            raw.execute("UPDATE drafts SET data = '{not json'")

    await asyncio.to_thread(corrupt)
    for _ in range(2):
        await resident.say(DESCRIPTION)
        assert resident.text == texts.SOMETHING_WENT_WRONG
    await resident.say("Начать")
    assert "канал обратной связи" in resident.text


async def test_cancel_by_its_number(harness: Harness, resident: Person) -> None:
    """Regression (found by the property tests): typing «Отмена»'s number on a choice step
    registered an appeal with the category «nav:cancel»."""
    await resident.say("Подать обращение")
    await resident.press("Согласен")
    await resident.say(str(resident.labels.index("Отмена") + 1))
    assert texts.CANCELLED in resident.text
    await resident.say("Мои обращения")  # an addition offer after a number: a fresh menu
    await resident.say("Новое сообщение")
    async with harness.app.db.transaction() as tx:
        assert await tx.drafts.get("vk", "1001") is None
        assert await tx.appeals.get(1) is None


# --- issue 14 ------------------------------------------------------------------------------


async def draft_of(harness: Harness, user_id: str = "1001") -> Draft | None:
    async with harness.app.db.transaction() as tx:
        return await tx.drafts.get("vk", user_id)


async def test_messages_while_the_addition_offer_is_open_are_kept(
    harness: Harness, resident: Person
) -> None:
    """Item 5: a second text and a photo sent while «Дополнить №N» is on offer go with the
    first, once the resident chooses."""
    number = await file_appeal(resident)
    await resident.say("Там ещё и фонарь не горит")
    assert texts.ADDITION_OFFER in resident.text
    await resident.say("И лужа во весь двор")
    assert texts.ADDITION_KEPT in resident.text and texts.HINT_CHOOSE not in resident.text
    await resident.send(photos=(Photo("vk", "p1", "https://vk.example/1.jpg"),))
    assert texts.ADDITION_KEPT in resident.text
    assert resident.labels == [f"Дополнить №{number}", "Новое обращение", "Отмена"]
    await resident.press(f"Дополнить №{number}")
    assert texts.ADDITION_ACCEPTED.format(number=number) in resident.text
    async with harness.app.db.transaction() as tx:
        additions = await tx.thread.of_appeal(number, kinds=("addition",))
    assert [(e.text, [p.ref for p in e.photos]) for e in additions] == [
        ("Там ещё и фонарь не горит\nИ лужа во весь двор", ["p1"])
    ]


async def test_main_menu_labels_work_on_the_addition_offer(
    harness: Harness, resident: Person
) -> None:
    """Item 5: «Мои обращения» and «Справка» do what they say and leave the offer open;
    «Подать обращение» starts an appeal with what the offer kept."""
    number = await file_appeal(resident)
    await resident.say("Не горит фонарь на остановке у школы")
    await resident.say("Мои обращения")
    assert f"№{number} от" in resident.text and texts.ADDITION_OFFER in resident.text
    await resident.say("Справка")
    assert "59-ФЗ" in resident.text and texts.ADDITION_OFFER in resident.text
    await resident.say("Подать обращение")
    assert "Выберите тему" in resident.text
    await resident.press("Дороги")
    await resident.press("Сергино")
    assert "Сейчас описание такое" in resident.text
    assert "Не горит фонарь на остановке у школы" in resident.text
    await resident.press("Оставить как есть")
    assert "Укажите адрес" in resident.text
    draft = await draft_of(harness)
    assert draft is not None and draft.data["description"] == (
        "Не горит фонарь на остановке у школы"
    )


async def test_a_first_message_describing_a_problem_is_offered_as_an_appeal(
    harness: Harness, resident: Person
) -> None:
    """Item 7: the text is not thrown away: consent, category and settlement are asked,
    and the description step shows it."""
    problem = "У нас третий день нет воды в доме 5 по ул. Ленина"
    await resident.say(problem)
    assert "канал обратной связи" in resident.text and texts.INTAKE_OFFER in resident.text
    assert resident.labels[:3] == ["Подать обращение", "Мои обращения", "Справка"]
    await resident.say("Управляющая компания не отвечает")
    assert texts.INTAKE_KEPT in resident.text
    await resident.press("Подать обращение")
    assert "Согласие на обработку" in resident.text  # consent still comes first
    await resident.press("Согласен")
    await resident.press("ЖКХ")
    await resident.press("Сергино")
    assert "Опишите проблему" in resident.text and problem in resident.text
    await resident.press("Оставить как есть")
    for _ in range(4):
        await resident.press("Пропустить")
    await resident.press("Отправить")
    async with harness.app.db.transaction() as tx:
        appeal = await tx.appeals.get(1)
    assert appeal is not None
    assert appeal.text == f"{problem}\nУправляющая компания не отвечает"


async def test_a_kept_first_message_goes_with_a_refused_consent(
    harness: Harness, resident: Person
) -> None:
    await resident.say("Не вывозят мусор с площадки у дома 7")
    await resident.press("Подать обращение")
    await resident.press("Не согласен")
    assert texts.CONSENT_REFUSED in resident.text
    assert await draft_of(harness) is None  # nothing personal kept without consent


async def test_a_greeting_is_only_greeted(harness: Harness, resident: Person) -> None:
    await resident.say("Добрый день!")
    assert texts.INTAKE_OFFER not in resident.text and "Выберите, что вы хотите" in resident.text
    assert await draft_of(harness) is None


async def make_appeals(harness: Harness, count: int, user_id: str = "1001") -> list[int]:
    """`count` appeals of the resident, written straight to the database (oldest first)."""
    now = harness.clock.now
    async with harness.app.db.transaction() as tx:
        resident = await tx.residents.get_or_create("vk", user_id, user_id, now)
        numbers = []
        for i in range(count):
            created = now + timedelta(minutes=i)
            appeal = await tx.appeals.create(
                resident_id=resident.id,
                category="roads",
                settlement="sergino",
                text=f"Обращение номер {i}",
                place=None,
                latitude=None,
                longitude=None,
                photos=(),
                contact_name=None,
                contact_phone=None,
                platform="vk",
                chat_id=user_id,
                created_at=created,
                deadline_at=created + timedelta(hours=24),
            )
            numbers.append(appeal.number)
    return numbers


def listed(person: Person) -> list[int]:
    return [int(line[1:].split()[0]) for line in person.text.splitlines() if line[:1] == "№"]


async def test_my_appeals_pages_through_all_of_them(harness: Harness, resident: Person) -> None:
    """Item 8: «Ещё» (pressed, typed, or its number) shows the next ten; every appeal is
    shown once; «Ещё» after the last page does not become an addition."""
    numbers = await make_appeals(harness, 23)
    await resident.say("Мои обращения")
    assert resident.text.splitlines()[0] == "Ваши обращения (сначала новые), всего 23:"
    assert "Показаны 1–10 из 23" in resident.text
    assert resident.labels == ["Подать обращение", "Мои обращения", "Справка", "Ещё"]
    seen = listed(resident)
    await resident.say("Ещё")
    assert resident.text.splitlines()[0] == "Ваши обращения, 11–20 из 23:"
    seen += listed(resident)
    await resident.say("4")  # the number of «Ещё»
    seen += listed(resident)
    assert "Ещё" not in resident.labels and "Показаны" not in resident.text
    assert seen == sorted(numbers, reverse=True)
    await resident.say("Ещё")  # nothing more to show: not an addition to an open appeal
    assert texts.ADDITION_OFFER not in resident.text and texts.HINT_STALE_BUTTON in resident.text
    await resident.say("Мои обращения")
    await resident.press("Ещё")
    assert listed(resident) == sorted(numbers, reverse=True)[10:20]
    await resident.say("Там ещё одна яма у магазина")  # anything else drops the bookmark
    assert texts.ADDITION_OFFER in resident.text


async def test_my_appeals_pages_in_the_middle_of_a_form(harness: Harness, resident: Person) -> None:
    numbers = await make_appeals(harness, 12)
    await to_description(resident)
    await resident.say("Мои обращения")
    assert listed(resident) == sorted(numbers, reverse=True)[:10]
    assert "Опишите проблему" in resident.text
    await resident.say("Ещё")
    assert listed(resident) == sorted(numbers, reverse=True)[10:]
    assert "Опишите проблему" in resident.text
    draft = await draft_of(harness)
    assert draft is not None and draft.step == "description" and "description" not in draft.data


@pytest.mark.parametrize("step", ["description", "place", "contact_name"])
@pytest.mark.parametrize("label", ["Мои обращения", "Справка", "Подать обращение"])
async def test_main_menu_labels_at_a_free_text_step(
    harness: Harness, resident: Person, step: str, label: str
) -> None:
    """Item 9: Telegram's menu keyboard sends its labels as text; at a free-text step they
    do what they say and the draft stays as it was, to be continued."""
    await to_description(resident)
    if step != "description":
        await resident.say(DESCRIPTION)
    if step == "contact_name":
        await resident.press("Пропустить")
        await resident.press("Пропустить")
    before = await draft_of(harness)
    await resident.say(label)
    after = await draft_of(harness)
    assert before is not None and after is not None
    if label == "Подать обращение":
        assert "незавершённое обращение" in resident.text
        await resident.press("Продолжить")
        after = await draft_of(harness)
        assert after is not None
    else:
        expected = texts.NO_APPEALS if label == "Мои обращения" else "59-ФЗ"
        assert expected in resident.text
    assert (after.step, after.data) == (before.step, before.data)
    assert label not in str(after.data)


async def test_skip_typed_at_the_description_is_not_a_description(
    harness: Harness, resident: Person
) -> None:
    """Item 10: back at the description, the kept text is shown with «Оставить как есть»,
    and a typed «Пропустить» is not taken as the description."""
    await to_description(resident)
    await resident.say(DESCRIPTION)
    await resident.press("Назад")
    assert "Сейчас описание такое" in resident.text and DESCRIPTION in resident.text
    assert resident.labels == ["Оставить как есть", "Назад", "Отмена"]
    await resident.say("Пропустить")
    assert texts.HINT_NOT_HERE.format(label="Пропустить") in resident.text
    draft = await draft_of(harness)
    assert draft is not None and draft.data["description"] == DESCRIPTION
    await resident.press("Оставить как есть")
    assert "Укажите адрес" in resident.text


async def test_a_kept_short_description_is_announced_after_back(
    harness: Harness, resident: Person
) -> None:
    """Item 10: what was kept of a too short description is said when the step comes back."""
    await to_description(resident)
    await resident.say("Короткий")
    await resident.press("Назад")
    await resident.press("Сергино")
    assert "Уже написано: «Короткий»" in resident.text
    await resident.say("Яма на дороге у дома 5")
    draft = await draft_of(harness)
    assert draft is not None and draft.data["description"] == "Короткий\nЯма на дороге у дома 5"


async def test_keep_after_back_keeps_the_typed_name(harness: Harness, resident: Person) -> None:
    """Item 10: «Оставить как есть» keeps the name typed before «Назад», not the profile's."""
    await to_description(resident)
    await resident.say(DESCRIPTION)
    await resident.press("Пропустить")
    await resident.press("Пропустить")
    assert "В профиле указано: Иван Петров" in resident.text
    await resident.say("Пётр")
    await resident.press("Назад")
    assert "Сейчас указано: Пётр" in resident.text
    await resident.press("Оставить как есть")
    await resident.press("Пропустить")
    assert "Имя: Пётр" in resident.text


async def test_invisible_address_is_no_address(harness: Harness, resident: Person) -> None:
    """Item 11: twenty zero-width spaces are not an address."""
    await to_description(resident)
    await resident.say(DESCRIPTION)
    await resident.say("\u200b" * 20)
    assert texts.HINT_TEXT_EXPECTED in resident.text and "Укажите адрес" in resident.text
    draft = await draft_of(harness)
    assert draft is not None and draft.step == "place" and "place" not in draft.data


@pytest.mark.parametrize("typed", ["Согласна", "да", "Да", "согласен."])
async def test_consent_in_the_words_people_use(resident: Person, typed: str) -> None:
    """Item 12."""
    await resident.say("Подать обращение")
    await resident.say(typed)
    assert "Выберите тему" in resident.text


async def test_a_miss_at_consent_repeats_only_the_question(resident: Person) -> None:
    """Item 12: the consent document is not printed again on every miss."""
    await resident.say("Подать обращение")
    document = resident.text
    await resident.say("а что это значит")
    assert texts.HINT_CHOOSE in resident.text and texts.CONSENT_AGAIN in resident.text
    assert "Оператор:" not in resident.text and len(resident.text) < len(document) / 2
    assert resident.labels == ["Согласен", "Не согласен"]


@pytest.mark.parametrize("typed", ["да", "Да", "да, удалить"])
async def test_forget_confirmed_in_the_words_people_use(
    harness: Harness, resident: Person, typed: str
) -> None:
    await file_appeal(resident)
    await resident.say("/forget")
    await resident.say(typed)
    assert texts.FORGOTTEN in resident.text
