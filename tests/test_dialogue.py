"""The resident dialogue of SPEC §4, driven through an in-memory channel on a real database."""

from __future__ import annotations

from datetime import timedelta

from handlers import texts
from storage.models import Photo, Status
from tests.conftest import Harness, Person
from tests.flows import DESCRIPTION, file_appeal, to_description


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
    harness: Harness, resident: Person
) -> None:
    import asyncio
    import sqlite3

    await to_description(resident)

    def corrupt() -> None:  # a draft no version of the dialogue can read
        with sqlite3.connect(harness.config.storage.sqlite_path, timeout=10) as raw:
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
