"""SPEC §12 inside the resident dialogue: text of any length and script, forged and stale
buttons, empty and unsupported messages. Every input gets a clear answer and the same question,
nothing crashes (the engine's apology never shows), nothing is lost, nothing leaks."""

from __future__ import annotations

import math
import unicodedata
from pathlib import Path

import pytest

from bot.config import Config
from handlers import texts
from handlers.dialogue.form import MAX_NAME
from handlers.messages import Location, Photo
from storage.models import Appeal, Draft, Status
from tests.conftest import Harness, Person, make_config

DESCRIPTION = "Яма на дороге возле дома культуры, глубокая"
HUGE = 20_000
HUGE_TEXTS = {
    "letters": "я" * HUGE,
    "words": ("слово " * (HUGE // 6 + 1))[:HUGE].strip(),
    "digits": "1" * HUGE,
}

# A substring of each step's question, to see that it is asked again.
QUESTIONS = {
    "menu": "Выберите, что вы хотите сделать.",
    "consent": "Вы даёте согласие?",
    "category": texts.ASK_CATEGORY,
    "settlement": texts.ASK_SETTLEMENT,
    "description": "Опишите проблему своими словами",
    "place": "Укажите адрес или место",
    "photos": "Приложите фото",
    "contact_name": "Как к вам обращаться?",
    "contact_phone": "Телефон для связи",
    "confirm": "Проверьте обращение",
    "resume": "У вас есть незавершённое обращение",
    "addition": texts.ADDITION_OFFER,
    "forget": texts.FORGET_CONFIRM,
}
FORM_ORDER = (
    "consent",
    "category",
    "settlement",
    "description",
    "place",
    "photos",
    "contact_name",
    "contact_phone",
    "confirm",
)
DIALOGUE_STEPS = (*FORM_ORDER, "resume", "addition", "forget")
CHOICE_STEPS = ("consent", "category", "settlement", "confirm", "resume", "addition", "forget")
MENU_LABELS = ["Подать обращение", "Мои обращения", "Справка"]
HINTS = (
    texts.HINT_CHOOSE,
    texts.HINT_STALE_BUTTON,
    texts.HINT_UNSUPPORTED,
    texts.HINT_TEXT_EXPECTED,
    texts.PHOTOS_EXPECTED,
)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    # Flood protection (SPEC §12) is not under test here: these tests type fast.
    return make_config(tmp_path / "appeals.db", limits={"messages_per_minute": 1_000_000})


# --- helpers -------------------------------------------------------------------------------


def assert_never_apologised(harness: Harness) -> None:
    """The engine's apology means an exception was caught: no input may cause one."""
    apologies = [m for m in harness.channel.sent if texts.SOMETHING_WENT_WRONG in m.text]
    assert apologies == []


async def stored_draft(harness: Harness, person: Person) -> Draft | None:
    async with harness.app.db.transaction() as tx:
        return await tx.drafts.get("vk", person.user_id)


async def stored_appeal(harness: Harness, number: int) -> Appeal:
    async with harness.app.db.transaction() as tx:
        appeal = await tx.appeals.get(number)
    assert appeal is not None
    return appeal


async def draft_state(harness: Harness, person: Person) -> tuple[str, dict[str, object]] | None:
    draft = await stored_draft(harness, person)
    return None if draft is None else (draft.step, draft.data)


async def file_appeal(person: Person, description: str = DESCRIPTION) -> int:
    await reach(person, "confirm", description)
    await person.press("Отправить")
    assert "зарегистрировано" in person.text
    return int(person.text.split("№")[1].split()[0])


async def reach(person: Person, step: str, description: str = DESCRIPTION) -> None:
    """Walk `person` to `step` (a step name of handlers.dialogue.resident.STEPS, or "menu")."""
    if step == "menu":
        await person.say("Начать")
        return
    if step == "forget":
        await person.say("/forget")
        return
    if step == "addition":
        await file_appeal(person)
        await person.say("Ещё одна подробность к обращению")
        return
    await person.say("Подать обращение")
    if step == "consent":
        return
    if "Согласен" in person.labels:
        await person.press("Согласен")
    target = "description" if step == "resume" else step
    actions = {
        "category": lambda: person.press("Дороги"),
        "settlement": lambda: person.press("Сергино"),
        "description": lambda: person.say(description),
        "place": lambda: person.press("Пропустить"),
        "photos": lambda: person.press("Пропустить"),
        "contact_name": lambda: person.press("Пропустить"),
        "contact_phone": lambda: person.press("Пропустить"),
    }
    for current, action in actions.items():
        if current == target:
            break
        await action()
    if step == "resume":
        await person.say("меню")


async def at_step(harness: Harness, person: Person, step: str) -> tuple[str, dict[str, object]]:
    await reach(person, step)
    state = await draft_state(harness, person)
    assert state is not None and state[0] == step
    assert QUESTIONS[step] in person.text
    return state


# --- text of any length --------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(HUGE_TEXTS))
async def test_huge_description_is_refused_and_asked_again(
    harness: Harness, resident: Person, kind: str
) -> None:
    limit = harness.config.limits.max_description
    before = await at_step(harness, resident, "description")
    replies = await resident.say(HUGE_TEXTS[kind])
    assert len(replies) == 1
    reply = replies[0].text
    assert "Слишком длинно" in reply and str(limit) in reply
    assert reply.rstrip().endswith(
        QUESTIONS["description"].join(reply.rsplit(QUESTIONS["description"], 1)[-1:]) or ""
    )
    assert QUESTIONS["description"] in reply
    assert len(reply) < 1000  # the text is not echoed back
    assert await draft_state(harness, resident) == before
    # The resident can go on: a proper description is taken.
    await resident.say(DESCRIPTION)
    assert QUESTIONS["place"] in resident.text
    draft = await stored_draft(harness, resident)
    assert draft is not None and draft.data["description"] == DESCRIPTION
    assert_never_apologised(harness)


async def test_too_long_message_keeps_the_earlier_short_part(
    harness: Harness, resident: Person
) -> None:
    await at_step(harness, resident, "description")
    await resident.say("Яма")
    assert "Слишком коротко" in resident.text
    await resident.say("я" * HUGE)
    assert "Слишком длинно" in resident.text
    await resident.say("у дома 5 на углу")
    draft = await stored_draft(harness, resident)
    assert draft is not None and draft.data.get("description") == "Яма\nу дома 5 на углу"


EXPECTED_HINT = {
    **dict.fromkeys(CHOICE_STEPS, texts.HINT_CHOOSE),
    "place": texts.PLACE_TOO_LONG.split("(")[0],
    "photos": texts.PHOTOS_EXPECTED,
    "contact_name": texts.NAME_TOO_LONG.split("(")[0],
    "contact_phone": texts.PHONE_INVALID,
}


@pytest.mark.parametrize("kind", sorted(HUGE_TEXTS))
@pytest.mark.parametrize("step", sorted(EXPECTED_HINT))
async def test_huge_text_on_other_steps_gets_a_hint(
    harness: Harness, resident: Person, step: str, kind: str
) -> None:
    before = await at_step(harness, resident, step)
    replies = await resident.say(HUGE_TEXTS[kind])
    assert len(replies) == 1
    reply = replies[0].text
    assert EXPECTED_HINT[step] in reply
    assert QUESTIONS[step] in reply
    assert len(reply) < 3000
    assert await draft_state(harness, resident) == before
    assert_never_apologised(harness)


@pytest.mark.parametrize("kind", sorted(HUGE_TEXTS))
async def test_huge_text_in_the_main_menu(harness: Harness, resident: Person, kind: str) -> None:
    await resident.say("Начать")
    replies = await resident.say(HUGE_TEXTS[kind])
    assert len(replies) == 1
    assert QUESTIONS["menu"] in replies[0].text
    assert resident.labels == MENU_LABELS
    assert len(replies[0].text) < 1000
    assert await stored_draft(harness, resident) is None
    assert_never_apologised(harness)


async def test_huge_addition_is_refused(harness: Harness, resident: Person) -> None:
    number = await file_appeal(resident)
    await resident.say("я" * HUGE)
    if f"Дополнить №{number}" in resident.labels:
        await resident.press(f"Дополнить №{number}")
    async with harness.app.db.transaction() as tx:
        thread = await tx.thread.of_appeal(number)
    limit = harness.config.limits.max_description
    assert all(len(entry.text or "") <= limit for entry in thread)
    assert_never_apologised(harness)


async def test_huge_display_name_is_cut(harness: Harness) -> None:
    person = harness.person("2001", name="Я" * HUGE)
    await reach(person, "contact_name")
    assert len(person.text) < 1000
    await person.press("Оставить как есть")
    await person.press("Пропустить")
    await person.press("Отправить")
    appeal = await stored_appeal(harness, 1)
    assert appeal.contact_name == "Я" * MAX_NAME
    async with harness.app.db.transaction() as tx:
        stored = await tx.residents.find("vk", "2001")
    assert stored is not None and stored.display_name == "Я" * MAX_NAME
    assert_never_apologised(harness)


# --- control characters --------------------------------------------------------------------


def only_allowed_controls(text: str) -> bool:
    return all(ch in "\n\t" or unicodedata.category(ch) != "Cc" for ch in text)


async def test_control_characters_are_removed_newlines_kept(
    harness: Harness, resident: Person
) -> None:
    raw = "Яма\x00 на\x07 дороге\x1b[31m у дома\r\nномер 5\rугол\tслева\x08\x7f"
    await at_step(harness, resident, "description")
    await resident.say(raw)
    await resident.say("ул.\x00 Лесная,\x1b 1\r\nподъезд 2")
    await resident.press("Пропустить")  # photos
    await resident.say("Ива\x00н\x07")
    await resident.press("Пропустить")  # phone
    summary = resident.text
    await resident.press("Отправить")
    appeal = await stored_appeal(harness, 1)
    for value in (appeal.text, appeal.place, appeal.contact_name):
        assert value is not None
        assert only_allowed_controls(value) and "\r" not in value
    lines = appeal.text.split("\n")
    assert len(lines) == 3
    assert lines[0].startswith("Яма на дороге") and lines[0].endswith("у дома")
    assert lines[1:] == ["номер 5", "угол\tслева"]
    assert appeal.place == "ул. Лесная, 1\nподъезд 2"
    assert appeal.contact_name == "Иван"
    assert texts.SUMMARY_TEXT.format(value=appeal.text) in summary
    assert texts.SUMMARY_PLACE.format(value=appeal.place) in summary
    assert_never_apologised(harness)


async def test_control_characters_in_the_display_name(harness: Harness) -> None:
    person = harness.person("2002", name="\x1bИван\x00 Петров\r\n")
    await reach(person, "contact_name")
    assert texts.ASK_NAME_WITH_PROFILE.format(name="Иван Петров") in person.text
    await person.press("Оставить как есть")
    await person.press("Пропустить")
    await person.press("Отправить")
    assert (await stored_appeal(harness, 1)).contact_name == "Иван Петров"
    assert_never_apologised(harness)


async def test_control_characters_around_button_labels(resident: Person) -> None:
    await resident.say("\x00Подать\x07 обращение\r\n")
    assert QUESTIONS["consent"] in resident.text


# --- any script, stored verbatim -----------------------------------------------------------

VERBATIM = {
    "zero-width": "Яма\u200bна\u200cдороге\u200d у дома\u2060 5\ufeff конец",
    "emoji": "Яма 🕳️ на дороге 👨\u200d👩\u200d👧\u200d👦 🇷🇺 🏳️\u200d🌈 👍🏽 😡",
    "arabic": "حفرة كبيرة في الطريق أمام المنزل",
    "hebrew": "בור גדול בכביש ליד הבית",
    "bidi": "Яма \u202eвозле дома\u202c 5 \u200fلا\u200e конец",
    "combining": "И\u0306ма на доро\u0301ге e\u0301 Z\u0334\u0321\u032a\u032ba\u0338\u0322l",
    "markup": "<b>жирный</b> *bold* _курсив_ [ссылка](javascript:alert(1)) <i>x</i>",
    "script": "<script>alert(document.cookie)</script> &amp; &lt;яма&gt;",
    "sql-drop": "'); DROP TABLE appeals; --",
    "sql-or": '" OR 1=1 -- яма у дома',
    "format": "{number} {0} %s %(x)s {{}} ${HOME} `rm -rf /`",
    "escapes": "\\x00 \\n \\u0000 NULL None null undefined",
}


@pytest.mark.parametrize("name", sorted(VERBATIM))
async def test_any_script_is_stored_and_shown_verbatim(
    harness: Harness, resident: Person, name: str
) -> None:
    value = VERBATIM[name]
    await at_step(harness, resident, "description")
    await resident.say(value)
    assert QUESTIONS["place"] in resident.text
    await resident.say(value)  # place
    await resident.press("Пропустить")  # photos
    await resident.say(value)  # name
    await resident.press("Пропустить")  # phone
    summary = resident.text
    assert texts.SUMMARY_TEXT.format(value=value) in summary
    assert texts.SUMMARY_PLACE.format(value=value) in summary
    assert texts.SUMMARY_NAME.format(value=value) in summary
    await resident.press("Отправить")
    assert "Обращение №1 зарегистрировано" in resident.text

    appeal = await stored_appeal(harness, 1)
    assert (appeal.text, appeal.place, appeal.contact_name) == (value, value, value)
    async with harness.app.db.transaction() as tx:
        created = await tx.thread.of_appeal(1)
        # An official answer with the same text comes back intact in «Мои обращения».
        await tx.thread.add(1, kind="answer", author="vk:1", now=harness.clock.now, text=value)
        await tx.appeals.set_status(1, Status.ANSWERED, harness.clock.now)
    assert [e.text for e in created] == [value]
    await resident.press("Мои обращения")
    assert texts.MY_APPEAL_ANSWER.format(text=value) in resident.text.split("\n")

    # The same text as an addition to the appeal is stored verbatim too.
    await resident.say(value)
    await resident.press("Дополнить №1")
    assert texts.ADDITION_ACCEPTED.format(number=1) in resident.text
    async with harness.app.db.transaction() as tx:
        additions = await tx.thread.of_appeal(1, kinds=("addition",))
    assert [e.text for e in additions] == [value]
    # Another appeal still works after "'); DROP TABLE appeals; --".
    assert await file_appeal(resident) == 2
    assert_never_apologised(harness)


async def test_hostile_display_name_is_kept_verbatim(harness: Harness) -> None:
    name = "Иван 👨\u200d👩\u200d👧 \u202eвортеП <b>'; --"
    person = harness.person("2003", name=name)
    await reach(person, "contact_name")
    assert texts.ASK_NAME_WITH_PROFILE.format(name=name) in person.text
    await person.press("Оставить как есть")
    await person.press("Пропустить")
    assert texts.SUMMARY_NAME.format(value=name) in person.text
    await person.press("Отправить")
    assert (await stored_appeal(harness, 1)).contact_name == name
    async with harness.app.db.transaction() as tx:
        stored = await tx.residents.find("vk", "2003")
    assert stored is not None and stored.display_name == name
    assert_never_apologised(harness)


async def test_zero_width_only_description_is_too_short(harness: Harness, resident: Person) -> None:
    before = await at_step(harness, resident, "description")
    await resident.say("\u200b\u200c\u200d\u2060\ufeff" * 20)
    assert "Слишком коротко: 0" in resident.text
    state = await draft_state(harness, resident)
    assert state is not None and state[0] == before[0] and "description" not in state[1]
    assert_never_apologised(harness)


async def test_lone_surrogate_does_not_crash(harness: Harness, resident: Person) -> None:
    await at_step(harness, resident, "description")
    await resident.say("Яма на дороге \ud83d возле дома")
    assert_never_apologised(harness)


@pytest.mark.parametrize("step", ["menu", "category"])
async def test_superscript_digit_on_a_choice_step(
    harness: Harness, resident: Person, step: str
) -> None:
    await reach(resident, step)
    await resident.say("²")
    assert QUESTIONS[step] in resident.text
    assert_never_apologised(harness)


@pytest.mark.parametrize(("latitude", "longitude"), [(math.nan, math.inf), (1000.0, -500.0)])
async def test_impossible_location_is_not_stored(
    harness: Harness, resident: Person, latitude: float, longitude: float
) -> None:
    await at_step(harness, resident, "place")
    await resident.send(location=Location(latitude, longitude))
    for _ in range(3):
        if "Пропустить" in resident.labels:
            await resident.press("Пропустить")
    if "Отправить" in resident.labels:
        await resident.press("Отправить")
    async with harness.app.db.transaction() as tx:
        appeal = await tx.appeals.get(1)
    if appeal is not None:
        lat, lon = appeal.latitude, appeal.longitude
        assert (lat, lon) == (None, None) or (
            lat is not None and lon is not None and -90 <= lat <= 90 and -180 <= lon <= 180
        )
    assert_never_apologised(harness)


# --- forged and stale buttons --------------------------------------------------------------

FORGED_PAYLOADS = (
    "cat:roads",
    "cat:nonexistent",
    "st:sergino",
    "st:moscow",
    "consent:yes",
    "consent:no",
    "send",
    "skip",
    "done",
    "name:keep",
    "nav:back",
    "resume:continue",
    "resume:restart",
    "add:999999",
    "add:-1",
    "add:abc",
    "forget:yes",
    "rate:1:yes",
    "zzz:1",
    "",
    " ",
    "menu:new ",
    "MENU:NEW",
    "x" * 10_240,
    "кнопка:🙂\u202e\u200b\x00",
    "'); DROP TABLE drafts; --",
)


@pytest.mark.parametrize("step", DIALOGUE_STEPS)
async def test_forged_payloads_on_every_step(harness: Harness, resident: Person, step: str) -> None:
    before = await at_step(harness, resident, step)
    keyboard = resident.last[-1].keyboard
    assert keyboard is not None
    own = {button.payload for button in keyboard.buttons}
    for payload in FORGED_PAYLOADS:
        if payload in own:
            continue
        replies = await resident.send(payload=payload)
        assert replies, payload[:40]
        assert texts.HINT_STALE_BUTTON in resident.text, payload[:40]
        assert QUESTIONS[step] in replies[-1].text, payload[:40]
        assert all(len(reply.text) < 3000 for reply in replies)
        assert await draft_state(harness, resident) == before, payload[:40]
    async with harness.app.db.transaction() as tx:
        appeals = await tx.appeals.of_resident(1, limit=10)
    assert len(appeals) == (1 if step == "addition" else 0)
    assert_never_apologised(harness)


async def test_forged_payloads_in_the_main_menu(harness: Harness, resident: Person) -> None:
    await resident.say("Начать")
    for payload in FORGED_PAYLOADS:
        assert await resident.send(payload=payload), payload[:40]
        assert texts.HINT_STALE_BUTTON in resident.text, payload[:40]
        assert resident.labels == MENU_LABELS, payload[:40]
        assert await stored_draft(harness, resident) is None, payload[:40]
    assert_never_apologised(harness)


async def test_buttons_of_a_finished_dialogue_are_stale(harness: Harness, resident: Person) -> None:
    await reach(resident, "confirm")
    await resident.press("Отправить")
    assert "Обращение №1 зарегистрировано" in resident.text
    await resident.send(payload="send")  # a second tap on the old «Отправить»
    assert texts.HINT_STALE_BUTTON in resident.text
    await resident.send(payload="cat:roads")  # a category button from an old keyboard
    assert texts.HINT_STALE_BUTTON in resident.text
    async with harness.app.db.transaction() as tx:
        assert await tx.appeals.get(2) is None

    await resident.say("Уточнение: яма стала больше")
    await resident.press("Дополнить №1")
    await resident.send(payload="add:1")  # a second tap on the old «Дополнить №1»
    assert texts.HINT_STALE_BUTTON in resident.text
    async with harness.app.db.transaction() as tx:
        additions = await tx.thread.of_appeal(1, kinds=("addition",))
    assert [e.text for e in additions] == ["Уточнение: яма стала больше"]
    assert_never_apologised(harness)


async def test_cannot_add_to_another_residents_appeal(harness: Harness) -> None:
    secret = "Секрет Боба: сосед жжёт мусор во дворе каждую ночь"
    bob = harness.person("3001", name="Боб Секретов")
    alice = harness.person("3002", name="Алиса")
    await reach(bob, "settlement")
    await bob.press("Андра")
    await bob.say(secret)
    await bob.say("ул. Тайная, 13")
    await bob.press("Пропустить")
    await bob.press("Оставить как есть")
    await bob.say("+7 912 000-00-13")
    await bob.press("Отправить")
    assert "Обращение №1 зарегистрировано" in bob.text

    # Alice without an appeal of her own.
    await alice.send(payload="add:1")
    assert texts.HINT_STALE_BUTTON in alice.text
    # Alice with an open appeal of her own, on the addition offer.
    assert await file_appeal(alice) == 2
    await alice.say("Дополнение от Алисы")
    assert alice.labels == ["Дополнить №2", "Новое обращение", "Отмена"]
    await alice.send(payload="add:1")
    assert texts.HINT_STALE_BUTTON in alice.text and QUESTIONS["addition"] in alice.text
    await alice.say("Дополнить №1")
    assert texts.HINT_CHOOSE in alice.text
    await alice.send(payload="add:999999")
    assert texts.HINT_STALE_BUTTON in alice.text
    await alice.say("/show 1")
    await alice.press("Отмена")
    await alice.say("Мои обращения")
    assert "№2 " in alice.text and "№1 " not in alice.text

    async with harness.app.db.transaction() as tx:
        bobs_thread = await tx.thread.of_appeal(1)
        alices_thread = await tx.thread.of_appeal(2)
    assert [e.kind for e in bobs_thread] == ["created"]
    assert [e.kind for e in alices_thread] == ["created"]
    everything_alice_read = "\n".join(m.text for m in harness.channel.sent_to("3002"))
    for leak in (secret, "Андра", "Тайная", "Боб", "9120000013", "000-00-13"):
        assert leak not in everything_alice_read
    assert_never_apologised(harness)


async def test_resume_offer_pressed_later_keeps_the_draft(
    harness: Harness, resident: Person
) -> None:
    await reach(resident, "place")
    harness.clock.advance(days=1)
    await resident.say("Здравствуйте")
    assert QUESTIONS["resume"] in resident.text
    harness.clock.advance(hours=1)
    await resident.press("Продолжить")
    assert QUESTIONS["place"] in resident.text
    draft = await stored_draft(harness, resident)
    assert draft is not None and draft.data.get("description") == DESCRIPTION


# --- empty, unsupported and whitespace-only messages ---------------------------------------

EMPTYISH: dict[str, dict[str, object]] = {
    "empty": {},
    "unsupported": {"unsupported": True},
    "unsupported-with-text": {"text": "   ", "unsupported": True},
    "spaces": {"text": "   \n\t  "},
    "unicode-spaces": {"text": "\u00a0\u2003\u3000"},
    "controls-only": {"text": "\x00\x07\x1b"},
}


@pytest.mark.parametrize("kind", sorted(EMPTYISH))
@pytest.mark.parametrize("step", DIALOGUE_STEPS)
async def test_empty_and_unsupported_get_a_hint(
    harness: Harness, resident: Person, step: str, kind: str
) -> None:
    before = await at_step(harness, resident, step)
    replies = await resident.send(**EMPTYISH[kind])
    assert len(replies) == 1
    reply = replies[0].text
    assert any(hint in reply for hint in HINTS)
    assert QUESTIONS[step] in reply
    assert await draft_state(harness, resident) == before
    assert_never_apologised(harness)


@pytest.mark.parametrize("kind", sorted(EMPTYISH))
async def test_empty_and_unsupported_in_the_main_menu(
    harness: Harness, resident: Person, kind: str
) -> None:
    replies = await resident.send(**EMPTYISH[kind])
    assert len(replies) == 1
    assert QUESTIONS["menu"] in replies[0].text
    assert await stored_draft(harness, resident) is None
    assert_never_apologised(harness)


async def test_photo_where_a_choice_is_expected(harness: Harness, resident: Person) -> None:
    before = await at_step(harness, resident, "category")
    await resident.send(photos=(Photo("vk", "photo1_1", "https://vk.example/1.jpg"),))
    assert texts.HINT_CHOOSE in resident.text and QUESTIONS["category"] in resident.text
    assert await draft_state(harness, resident) == before
    assert_never_apologised(harness)
