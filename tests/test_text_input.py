"""Unit tables for handlers.text_input: what a person typed, read the way SPEC §3/§4/§12 ask."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.dialogue.offers import describes_problem
from handlers.messages import Button, Incoming, Keyboard
from handlers.settings import Limits
from handlers.text_input import (
    button_label,
    clean_text,
    fold,
    is_one_of,
    neutralise_bidi,
    normalize_phone,
    pressed_button,
    visible_length,
)

PHONE_FORMAT = re.compile(r"\+7[3489]\d{9}")


# --- normalize_phone -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("+7 912 345-67-89", "+79123456789"),
        ("+79123456789", "+79123456789"),
        ("89123456789", "+79123456789"),
        ("8(912)3456789", "+79123456789"),
        ("8 (912) 345-67-89", "+79123456789"),
        ("8.912.345.67.89", "+79123456789"),
        ("9123456789", "+79123456789"),
        ("7 912 345 67 89", "+79123456789"),
        ("  +7 912 345 67 89  ", "+79123456789"),
        ("+7\u00a0912\u00a0345\u00a067\u00a089", "+79123456789"),  # no-break spaces
        ("+7\u2009912\u2009345\u200967\u200989", "+79123456789"),  # thin spaces
        # Октябрьское: area code 34678, five-digit local number
        ("+7 (34678) 2-81-00", "+73467828100"),
        ("8 (34678) 2-81-00", "+73467828100"),
        ("+7 (495) 123-45-67", "+74951234567"),
        ("8 800 555-35-35", "+78005553535"),
    ],
)
def test_normalize_phone_accepts_russian_numbers(typed: str, expected: str) -> None:
    assert normalize_phone(typed) == expected


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        "+",
        "+7",
        "+1 212 555 0100",  # USA
        "+44 20 7946 0958",  # UK
        "+8 912 345 67 89",
        "++79123456789",
        "+7+9123456789",
        "8 (712) 345-67-89",  # 7xx: Kazakhstan, not Russia
        "+7 712 345 67 89",
        "+7 512 345 67 89",  # 5xx and 6xx are not Russian codes
        "+7 612 345 67 89",
        "+7 012 345 67 89",
        "+7 112 345 67 89",
        "+7 212 345 67 89",
        "4951234567",  # a bare 10-digit number is accepted for mobiles (9…) only
        "12345",
        "912345678",  # nine digits
        "+7912345678",  # nine digits after +7
        "+791234567890",  # eleven digits after +7
        "891234567890",
        "телефон",
        "+7 912 ЗЧ5 67 89",  # Cyrillic letters looking like digits
        "+7 912 abc 67 89",
        "8912345678x",
        "８９１２３４５６７８９",  # fullwidth digits
        "+７ ９１２ ３４５ ６７ ８９",
        "+7 912 345 67 8９",
        "+7 ٩١٢ ٣٤٥ ٦٧ ٨٩",  # Arabic-Indic digits
        "+7 912 345 67 89 доб. 12",
        "+7 912 345 67 89; DROP TABLE residents",
    ],
)
def test_normalize_phone_rejects_everything_else(typed: str) -> None:
    assert normalize_phone(typed) is None


@given(st.text(max_size=40))
@settings(max_examples=300, deadline=None)
def test_normalize_phone_output_is_always_canonical(typed: str) -> None:
    phone = normalize_phone(typed)
    assert phone is None or PHONE_FORMAT.fullmatch(phone)


@given(st.sampled_from("3489"), st.text(alphabet="0123456789", min_size=9, max_size=9))
@settings(max_examples=100, deadline=None)
def test_every_formatting_of_a_valid_number_normalises_the_same(code: str, rest: str) -> None:
    digits = code + rest
    canonical = "+7" + digits
    forms = [
        canonical,
        "8" + digits,
        f"+7 ({digits[:3]}) {digits[3:6]}-{digits[6:8]}-{digits[8:]}",
        f"8-{digits[:3]}-{digits[3:6]}-{digits[6:8]}-{digits[8:]}",
    ]
    if code == "9":
        forms.append(digits)
    for form in forms:
        assert normalize_phone(form) == canonical, form


# --- clean_text ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", ""),
        ("   ", ""),
        ("\n\t \r\n", ""),
        ("Яма", "Яма"),
        ("  Яма  ", "Яма"),
        ("\x00Я\x00ма\x00", "Яма"),
        ("Яма\x07", "Яма"),
        ("a\x7fb", "ab"),  # DEL
        ("a\x9bb", "ab"),  # a C1 control
        ("\x1b[31mкрасный\x1b[0m", "красный"),  # whole terminal escape sequences removed
        ("строка\x85другая\u2028третья", "строка\nдругая\nтретья"),  # unicode line breaks
        ("эмодзи \ud83d обрезано", "эмодзи  обрезано"),  # a lone surrogate is dropped
        ("строка 1\r\nстрока 2", "строка 1\nстрока 2"),
        ("строка 1\rстрока 2", "строка 1\nстрока 2"),
        ("абзац 1\n\nабзац 2", "абзац 1\n\nабзац 2"),
        ("столбец\tстолбец", "столбец\tстолбец"),
        # kept verbatim: zero-width characters, bidi marks, emoji, combining marks
        ("я\u200bма\u200c\u200d\ufeff\u2060", "я\u200bма\u200c\u200d\ufeff\u2060"),
        ("\u202eабв\u202c", "\u202eабв\u202c"),
        ("👨\u200d👩\u200d👧\u200d👦 🇷🇺 🏳️\u200d🌈", "👨\u200d👩\u200d👧\u200d👦 🇷🇺 🏳️\u200d🌈"),
        ("И\u0306 e\u0301", "И\u0306 e\u0301"),
        ("حفرة في الطريق", "حفرة في الطريق"),
        ("בור בכביש", "בור בכביש"),
        ("'); DROP TABLE appeals; --", "'); DROP TABLE appeals; --"),
        ("<b>x</b> *y* [z](javascript:alert(1))", "<b>x</b> *y* [z](javascript:alert(1))"),
        ("{name} {0} %s", "{name} {0} %s"),
    ],
)
def test_clean_text(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


@given(st.text(max_size=200))
@settings(max_examples=300, deadline=None)
def test_clean_text_properties(raw: str) -> None:
    cleaned = clean_text(raw)
    assert clean_text(cleaned) == cleaned  # idempotent
    assert "\r" not in cleaned
    assert all(ch in "\n\t" or unicodedata.category(ch) != "Cc" for ch in cleaned)
    assert cleaned == cleaned.strip()

    # Nothing but control characters and whitespace at the ends is ever removed.
    def solid(text: str) -> str:
        return "".join(ch for ch in text if not ch.isspace() and unicodedata.category(ch) != "Cc")

    assert solid(cleaned) == solid(raw)


# --- visible_length ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("", 0),
        ("Яма", 3),
        ("Яма на дороге", 11),
        ("  \n\t ", 0),
        ("\u00a0\u2003\u3000", 0),  # no-break, em and ideographic spaces
        ("\u200b" * 50, 0),  # zero-width spaces
        ("\u200c\u200d\u2060\ufeff\u202e\u200f", 0),  # joiners, BOM, bidi controls
        ("я\u200bм\u200bа", 3),
        ("👍", 1),
        ("👨\u200d👩\u200d👧", 3),  # ZWJ joiners are not counted, the people are
        ("حفرة", 4),
        ("'); DROP TABLE appeals; --", 22),
    ],
)
def test_visible_length(text: str, length: int) -> None:
    assert visible_length(text) == length


def test_visible_length_does_not_count_combining_marks() -> None:
    assert visible_length("я" + "\u0301" * 20) == 1


@given(st.text(max_size=100))
@settings(max_examples=200, deadline=None)
def test_visible_length_bounds(text: str) -> None:
    assert 0 <= visible_length(text) <= len(text)
    assert visible_length(text) == visible_length(text + " \u200b\n")


# --- is_one_of -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("меню", True),
        ("  МЕНЮ ", True),
        ("Меню.", True),  # a final full stop is how people end what they type
        ("меню!!", True),
        ("мен ю", False),
        ("меню пожалуйста", False),
        ("", False),
        ("...", False),
    ],
)
def test_is_one_of(text: str, expected: bool) -> None:
    assert is_one_of(text, ("начать", "меню")) is expected


# --- pressed_button ------------------------------------------------------------------------

ROADS = Button("Дороги", "cat:roads")
HOUSING = Button("ЖКХ", "cat:housing")
SOCIAL = Button("Социальная защита", "cat:social")
CANCEL = Button("Отмена", "nav:cancel")
CHOICE = Keyboard(rows=((ROADS,), (HOUSING,), (SOCIAL,), (CANCEL,)), numbered=True)
FREE_TEXT = Keyboard(rows=((ROADS, HOUSING), (CANCEL,)), numbered=False)


def incoming(text: str = "", payload: str | None = None) -> Incoming:
    return Incoming(
        platform="vk",
        chat_id="1",
        user_id="1",
        received_at=datetime(2026, 3, 2, tzinfo=UTC),
        text=text,
        payload=payload,
    )


@pytest.mark.parametrize(
    ("text", "payload", "expected"),
    [
        # payloads
        ("", "cat:roads", ROADS),
        ("", "nav:cancel", CANCEL),
        ("ЖКХ", "cat:roads", ROADS),  # the payload wins over the text
        ("", "cat:nonexistent", None),
        ("Дороги", "cat:nonexistent", None),  # a forged payload is not rescued by the text
        ("", "", None),
        ("", "CAT:ROADS", None),  # payloads are exact
        ("", " cat:roads", None),
        ("", "x" * 10_240, None),
        ("", "кнопка:🙂\u202e", None),
        # labels: case and spaces ignored
        ("Дороги", None, ROADS),
        ("дороги", None, ROADS),
        ("  ДОРОГИ  ", None, ROADS),
        ("жкх", None, HOUSING),
        ("социальная   защита", None, SOCIAL),
        ("Социальная\nзащита", None, SOCIAL),
        ("Дороги.", None, ROADS),  # a final full stop does not matter
        ("Дороги!", None, ROADS),
        (".Дороги", None, None),
        ("Доро ги", None, None),
        ("Дорог", None, None),
        ("", None, None),
        # numbers on a choice step
        ("1", None, ROADS),
        ("2", None, HOUSING),
        (" 3 ", None, SOCIAL),
        ("4", None, CANCEL),
        ("5", None, None),  # out of range
        ("0", None, None),
        ("-1", None, None),
        ("999", None, None),
        ("1000", None, None),
        ("01", None, ROADS),  # a leading zero is still the same number
        ("1.5", None, None),
        ("1,5", None, None),
        ("1 2", None, None),
        ("+1", None, None),
        ("1)", None, None),
        ("один", None, None),
        ("１", None, None),  # fullwidth and Arabic-Indic digits are not list numbers
        ("٣", None, None),
    ],
)
def test_pressed_button_on_a_choice_step(text: str, payload: str | None, expected: Button) -> None:
    assert pressed_button(incoming(text, payload), CHOICE) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", None), ("2", None), ("3", None), ("дороги", ROADS), (" отмена ", CANCEL)],
)
def test_numbers_are_text_on_free_text_steps(text: str, expected: Button | None) -> None:
    assert pressed_button(incoming(text), FREE_TEXT) == expected


def test_no_keyboard_presses_nothing() -> None:
    assert pressed_button(incoming("1"), Keyboard(numbered=True)) is None
    assert pressed_button(incoming("", "nav:cancel"), Keyboard()) is None


@pytest.mark.parametrize("typed", ["²", "①", "1²"])
def test_non_decimal_digits_press_nothing(typed: str) -> None:
    assert pressed_button(incoming(typed), CHOICE) is None


@given(st.text(max_size=6), st.booleans())
@settings(max_examples=300, deadline=None)
def test_pressed_button_is_one_of_the_keyboard_or_none(text: str, numbered: bool) -> None:
    keyboard = Keyboard(rows=CHOICE.rows, numbered=numbered)
    pressed = pressed_button(incoming(clean_text(text)), keyboard)
    assert pressed is None or pressed in keyboard.buttons


# --- how people type: ё/е, commas, obvious answers (issue 14, item 12) ----------------------

RESOLVED = Button("Вопрос решён", "rate:1:yes")
UNRESOLVED = Button("Вопрос не решён", "rate:1:no")
RATING = Keyboard(rows=((RESOLVED, UNRESOLVED),), inline=True)
AGREE = Button("Согласен", "consent:yes")
DISAGREE = Button("Не согласен", "consent:no")
CONSENT = Keyboard(rows=((AGREE, DISAGREE),), numbered=True)
FORGET = Keyboard(
    rows=((Button("Да, удалить", "forget:yes"),), (Button("Отмена", "nav:cancel"),)),
    numbered=True,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("вопрос решен", RESOLVED),  # е for ё
        ("Вопрос решён", RESOLVED),
        ("ВОПРОС РЕШЕН!", RESOLVED),
        ("решен", RESOLVED),
        ("вопрос не решен", UNRESOLVED),
        ("не решён", UNRESOLVED),
        ("да", None),  # «да» could answer anything here: it rates nothing
    ],
)
def test_typed_rating(text: str, expected: Button | None) -> None:
    assert pressed_button(incoming(text), RATING) == expected


@pytest.mark.parametrize(
    ("text", "payload"),
    [
        ("Согласен", "consent:yes"),
        ("Согласна", "consent:yes"),
        ("да", "consent:yes"),
        ("Да", "consent:yes"),
        ("Да.", "consent:yes"),
        ("да, согласна", "consent:yes"),
        ("Не согласна", "consent:no"),
        ("нет", "consent:no"),
        ("может быть", None),
    ],
)
def test_consent_accepts_the_obvious_forms(text: str, payload: str | None) -> None:
    pressed = pressed_button(incoming(text), CONSENT)
    assert (pressed.payload if pressed else None) == payload


@pytest.mark.parametrize("text", ["Да, удалить", "да удалить", "да", "Да", "удалить"])
def test_forget_confirmation_accepts_the_obvious_forms(text: str) -> None:
    pressed = pressed_button(incoming(text), FORGET)
    assert pressed is not None and pressed.payload == "forget:yes"


def test_a_label_beats_another_buttons_alias() -> None:
    # «Нет» is an alias of «Пропустить»; a button labelled «Нет» itself wins.
    no = Button("Нет", "no")
    keyboard = Keyboard(rows=((Button("Пропустить", "skip"), no),))
    assert pressed_button(incoming("нет"), keyboard) == no


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Вопрос решён", "вопрос решен"),
        ("  ЁЛКА  ", "елка"),
        ("Да, удалить!", "да удалить"),
        ("Согласен...", "согласен"),
        ("/start", "/start"),
        ("Дополнить №5", "дополнить №5"),
    ],
)
def test_fold(text: str, folded: str) -> None:
    assert fold(text) == folded


# --- labels typed where they are not buttons (issue 14, items 5, 8, 10) -------------------


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Пропустить", "Пропустить"),
        (" пропустить ", "пропустить"),
        ("Оставить как есть", "Оставить как есть"),
        ("Ещё", "Ещё"),
        ("еще", "еще"),
        ("Дополнить №12", "Дополнить №12"),
        ("дополнить № 3", "дополнить № 3"),
        ("Готово", "Готово"),
        ("Сергино", None),  # a settlement is a fine address
        ("Пропустить ямку", None),
        ("ул. Ленина, 5", None),
        ("", None),
    ],
)
def test_button_label(text: str, label: str | None) -> None:
    assert button_label(text) == label


# --- what staff see (issue 14, item 11) ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\u202eвортеП", "вортеП"),  # right-to-left override
        ("Яма \u202bвозле\u202c дома", "Яма возле дома"),  # embedding and pop
        ("a\u2066b\u2067c\u2068d\u2069", "abcd"),  # isolates
        ("עברית\u200fok", "עברית\u200fok"),  # a mark moves nothing: kept
        ("שלום עולם", "שלום עולם"),  # right-to-left text itself is kept
        ("обычный текст", "обычный текст"),
    ],
)
def test_neutralise_bidi(text: str, shown: str) -> None:
    assert neutralise_bidi(text) == shown


@given(st.text(max_size=60))
@settings(max_examples=200, deadline=None)
def test_neutralised_text_has_no_directional_formatting(text: str) -> None:
    shown = neutralise_bidi(text)
    assert not any(unicodedata.bidirectional(ch) in BIDI_FORMATTING for ch in shown)
    assert neutralise_bidi(shown) == shown


BIDI_FORMATTING = {"LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"}


# --- a first message that describes a problem (issue 14, item 7) --------------------------

LIMITS = Limits(min_description=10, max_description=4000)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("У нас третий день нет воды", True),
        ("Здравствуйте! У нас третий день нет воды…", True),
        ("Добрый день, не горит фонарь у школы", True),
        ("Яма на дороге у дома 5", True),
        ("Здравствуйте", False),
        ("Здравствуйте!", False),
        ("Добрый день", False),
        ("Добрый день, подскажите", False),  # a greeting and one word
        ("Доброго времени суток!", False),
        ("Привет, как дела", False),  # too short after the greeting
        ("Нет воды", False),  # too short
        ("Оставить как есть", False),  # a button's label
        ("Подать обращение", False),
        ("/start please do something", False),  # a command
        ("\u200b" * 30, False),
        ("я" * 4001 + " б в", False),  # too long: said so instead
        ("", False),
    ],
)
def test_describes_problem(text: str, expected: bool) -> None:
    assert describes_problem(text, LIMITS) is expected
