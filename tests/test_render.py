"""bot.render: degrading an outgoing message to what a channel can show, splitting long text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.channels.base import Capabilities
from bot.render import plain_text, split_text
from handlers import keyboards, texts
from handlers.messages import Button, Keyboard, Outgoing, Photo

BARE = Capabilities(buttons=False, photos=False, max_text=4096)
RICH = Capabilities(buttons=True, photos=True, max_text=4096)


def solid(text: str) -> str:
    """The text without any whitespace: what splitting must never lose or reorder."""
    return "".join(text.split())


# --- split_text ----------------------------------------------------------------------------


def test_short_text_is_one_chunk() -> None:
    assert split_text("Здравствуйте!", 100) == ["Здравствуйте!"]
    assert split_text("x" * 100, 100) == ["x" * 100]


def test_empty_text_is_one_empty_chunk() -> None:
    assert split_text("", 10) == [""]


@pytest.mark.parametrize("limit", [0, -1])
def test_limit_must_be_positive(limit: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        split_text("text", limit)


def test_prefers_a_paragraph_boundary() -> None:
    first = "Первый абзац, довольно длинный."
    second = "Второй абзац тоже не короткий."
    text = f"{first}\n\n{second}"
    assert split_text(text, len(first) + 10) == [first, second]


def test_paragraph_beats_a_later_line_or_space() -> None:
    text = "aaaa aaaa aaaa\n\nbbb bbb\nccc ccc ddd"
    assert split_text(text, 26) == ["aaaa aaaa aaaa", "bbb bbb\nccc ccc ddd"]


def test_prefers_a_line_boundary_over_a_space() -> None:
    text = "строка номер один\nстрока номер два и ещё"
    assert split_text(text, 25) == ["строка номер один", "строка номер два и ещё"]


def test_cuts_at_a_space_without_breaking_words() -> None:
    text = "раз два три четыре пять шесть семь восемь девять десять"
    chunks = split_text(text, 20)
    assert all(len(chunk) <= 20 for chunk in chunks)
    assert " ".join(chunks).split() == text.split()
    assert all(chunk == chunk.strip() for chunk in chunks)


def test_a_single_overlong_word_is_cut() -> None:
    word = "й" * 25
    assert split_text(word, 10) == ["й" * 10, "й" * 10, "й" * 5]
    url = "https://example.org/" + "a" * 50
    chunks = split_text(f"Ссылка: {url}", 30)
    assert chunks[0] == "Ссылка:"
    assert "".join(chunks[1:]) == url
    assert all(len(chunk) <= 30 for chunk in chunks)


def test_telegram_sized_message() -> None:
    paragraph = "Обращение зарегистрировано, ответ придёт в этот чат. " * 10
    text = "\n\n".join([paragraph.strip()] * 20)
    chunks = split_text(text, 4096)
    assert all(0 < len(chunk) <= 4096 for chunk in chunks)
    assert "\n\n".join(chunks) == text  # every cut fell on a paragraph boundary


def test_a_newline_boundary_is_used_when_there_is_no_space() -> None:
    assert split_text("ab\ncccccccc\nd", 10) == ["ab", "cccccccc\nd"]


def test_the_latest_boundary_is_used_when_none_is_past_half() -> None:
    assert split_text("a b\ncccccccccc", 10) == ["a b", "cccccccccc"]


def test_no_empty_chunk_for_leading_whitespace() -> None:
    assert split_text(" " * 6 + "a" * 10, 10) == ["a" * 10]


WORD = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc")),
    min_size=1,
    max_size=12,
).filter(lambda w: w == "".join(w.split()))


@given(
    words=st.lists(WORD, min_size=1, max_size=60),
    limit=st.integers(min_value=12, max_value=80),
)
@settings(max_examples=300, deadline=None)
def test_words_separated_by_spaces_are_never_broken(words: list[str], limit: int) -> None:
    text = " ".join(words)
    chunks = split_text(text, limit)
    assert all(0 < len(chunk) <= limit for chunk in chunks)
    assert " ".join(chunks).split() == words


PIECE = st.one_of(
    st.sampled_from([" ", "\n", "\n\n", "\t", "\u00a0", "  "]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=15),
)


@given(
    text=st.lists(PIECE, max_size=40).map("".join).map(str.lstrip),
    limit=st.integers(min_value=1, max_value=50),
)
@settings(max_examples=400, deadline=None)
def test_split_never_exceeds_the_limit_nor_loses_text(text: str, limit: int) -> None:
    chunks = split_text(text, limit)
    assert chunks
    assert all(len(chunk) <= limit for chunk in chunks)
    assert solid("".join(chunks)) == solid(text)
    if len(text) <= limit:
        assert chunks == [text]
    else:
        assert all(chunk.strip() for chunk in chunks)


# --- plain_text ----------------------------------------------------------------------------


def test_choice_keyboard_becomes_a_numbered_list() -> None:
    message = Outgoing("console", "1", "Выберите, что вы хотите сделать.", keyboards.main_menu())
    assert plain_text(message, BARE) == (
        "Выберите, что вы хотите сделать.\n\n1. Подать обращение\n2. Мои обращения\n3. Справка"
    )


def test_numbers_count_across_rows() -> None:
    keyboard = Keyboard(
        rows=((Button("Согласен", "consent:yes"), Button("Не согласен", "consent:no")),),
        numbered=True,
    )
    message = Outgoing("console", "1", "Вы даёте согласие?", keyboard)
    assert plain_text(message, BARE).endswith("1. Согласен\n2. Не согласен")


def test_free_text_keyboard_becomes_bracketed_labels() -> None:
    keyboard = Keyboard(rows=((keyboards.SKIP,), (keyboards.BACK, keyboards.CANCEL)))
    message = Outgoing("console", "1", "Укажите адрес.", keyboard)
    assert plain_text(message, BARE) == "Укажите адрес.\n\n[Пропустить] · [Назад] · [Отмена]"


def test_photos_become_links_where_a_channel_has_none() -> None:
    photos = (
        Photo("vk", "photo1_2", "https://vk.example/1.jpg"),
        Photo("tg", "AgACAgIAAxk", "https://tg.example/2.jpg"),
    )
    message = Outgoing("console", "1", "Фото к обращению №5", photos=photos)
    assert plain_text(message, BARE) == (
        "Фото к обращению №5\n\nhttps://vk.example/1.jpg\nhttps://tg.example/2.jpg"
    )
    assert plain_text(message, RICH) == "Фото к обращению №5"


def test_photo_without_url_is_named_not_shown_as_a_file_id() -> None:
    message = Outgoing("console", "1", "Фото", photos=(Photo("tg", "AgACAgIAAxk"),))
    assert plain_text(message, BARE) == f"Фото\n\n{texts.PHOTOS_ONLY}"


def test_text_photos_and_buttons_in_that_order() -> None:
    message = Outgoing(
        "console",
        "1",
        "Ответ на обращение №5",
        Keyboard(rows=((Button("Вопрос решён", "rate:5:yes"),),), numbered=True),
        photos=(Photo("vk", "p", "https://vk.example/p.jpg"),),
    )
    assert plain_text(message, BARE).split("\n\n") == [
        "Ответ на обращение №5",
        "https://vk.example/p.jpg",
        "1. Вопрос решён",
    ]


def test_a_channel_with_buttons_keeps_the_text_alone() -> None:
    message = Outgoing("vk", "1", "Выберите тему обращения.", keyboards.main_menu())
    assert plain_text(message, RICH) == "Выберите тему обращения."
    only_photos = Capabilities(buttons=True, photos=False, max_text=4096)
    assert plain_text(message, only_photos) == "Выберите тему обращения."


def test_no_empty_parts() -> None:
    assert plain_text(Outgoing("console", "1", "Текст", Keyboard()), BARE) == "Текст"
    message = Outgoing("console", "1", "", keyboards.main_menu())
    assert plain_text(message, BARE).startswith("1. Подать обращение")


def test_user_text_is_not_interpreted() -> None:
    hostile = "<b>x</b> *y* [z](javascript:alert(1)) {0} %s \u202e"
    message = Outgoing("console", "1", hostile, Keyboard(rows=((Button(hostile, "p"),),)))
    assert plain_text(message, BARE) == f"{hostile}\n\n[{hostile}]"
