"""Keyboards fitted to a platform's limits: shortened labels, paired rows, «Ещё» pages."""

from __future__ import annotations

from bot.pagination import KeyboardLimits, PageMemory, keyboard_pages
from handlers import texts
from handlers.messages import Button, Keyboard

NAV = (Button("Назад", "nav:back"), Button("Отмена", "nav:cancel"))
VK = KeyboardLimits(max_rows=10, max_per_row=5, max_buttons=40, max_label=40)


def column(n: int) -> Keyboard:
    rows = tuple((Button(f"Вариант {i}", f"st:{i}"),) for i in range(n))
    return Keyboard(rows=(*rows, NAV), numbered=True)


def payloads(keyboard: Keyboard) -> list[str]:
    return [b.payload for b in keyboard.buttons]


def test_a_keyboard_that_fits_is_unchanged() -> None:
    keyboard = column(8)
    assert keyboard_pages(keyboard, VK) == [keyboard]


def test_too_many_rows_are_paired_first() -> None:
    [page] = keyboard_pages(column(12), VK)  # 13 rows: too many; 6 pairs + nav fit
    assert len(page.rows) == 7
    assert page.rows[-1] == NAV
    assert payloads(page)[:-2] == [f"st:{i}" for i in range(12)]
    assert page.numbered


def test_beyond_pairing_pages_with_more() -> None:
    pages = keyboard_pages(column(30), VK)
    assert len(pages) > 1
    seen = []
    for index, page in enumerate(pages):
        assert len(page.rows) <= VK.max_rows
        assert len(page.buttons) <= VK.max_buttons
        assert page.rows[-1] == NAV
        more = page.rows[-2][0]
        assert more.label == texts.MORE
        assert more.payload == f"more:{(index + 1) % len(pages)}"
        seen += [p for p in payloads(page) if p.startswith("st:")]
    assert seen == [f"st:{i}" for i in range(30)]  # every option on some page, once


def test_long_labels_are_shortened_keeping_the_payload() -> None:
    keyboard = Keyboard(rows=((Button("Я" * 60, "cat:x"),),))
    [page] = keyboard_pages(keyboard, VK)
    assert len(page.buttons[0].label) == 40
    assert page.buttons[0].label.endswith("…")
    assert page.buttons[0].payload == "cat:x"


def test_wide_rows_are_split() -> None:
    keyboard = Keyboard(rows=(tuple(Button(str(i), str(i)) for i in range(7)),))
    [page] = keyboard_pages(keyboard, VK)
    assert [len(row) for row in page.rows] == [5, 2]


def test_inline_limits_hold() -> None:
    inline = KeyboardLimits(max_rows=6, max_per_row=5, max_buttons=10, max_label=40)
    keyboard = Keyboard(rows=column(14).rows, inline=True)
    for page in keyboard_pages(keyboard, inline):
        assert len(page.rows) <= 6 and len(page.buttons) <= 10
        assert page.inline


def test_page_memory_answers_more_presses() -> None:
    memory = PageMemory(capacity=2)
    pages = keyboard_pages(column(30), VK)
    memory.remember("42", pages)
    assert memory.page("42", "more:1") == pages[1]
    assert memory.page("42", "more:99") is None
    assert memory.page("42", "st:1") is None
    assert memory.page("43", "more:1") is None
    memory.remember("42", [column(3)])  # a keyboard that fits forgets the old pages
    assert memory.page("42", "more:1") is None
    for chat in ("a", "b", "c"):
        memory.remember(chat, pages)
    assert memory.page("a", "more:1") is None  # the oldest was evicted
    assert memory.page("c", "more:1") == pages[1]


def test_page_memory_keeps_two_communities_chats_apart() -> None:
    """One person in two communities (bots) has two chats with the same id (VK, MAX)."""
    memory = PageMemory()
    district, sergino = keyboard_pages(column(30), VK), keyboard_pages(column(20), VK)
    memory.remember("42", district)
    memory.remember("42", sergino, "888")
    assert memory.page("42", "more:1") == district[1]
    assert memory.page("42", "more:1", "888") == sergino[1]
    memory.remember("42", [column(3)], "888")
    assert memory.page("42", "more:1", "888") is None
    assert memory.page("42", "more:1") == district[1]
