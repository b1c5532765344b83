"""Keyboards that exceed a platform's limits: shortened labels, paired rows, and pages
joined by «Ещё» — decided once here for every channel (SPEC §3)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace

from handlers import texts
from handlers.messages import Button, Keyboard

MORE_PREFIX = "more:"


@dataclass(frozen=True)
class KeyboardLimits:
    max_rows: int
    max_per_row: int
    max_buttons: int
    max_label: int


def _fits(rows: list[tuple[Button, ...]], limits: KeyboardLimits) -> bool:
    return len(rows) <= limits.max_rows and sum(map(len, rows)) <= limits.max_buttons


def _short(button: Button, limit: int) -> Button:
    if len(button.label) <= limit:
        return button
    return Button(button.label[: limit - 1].rstrip() + "…", button.payload)


def keyboard_pages(keyboard: Keyboard, limits: KeyboardLimits) -> list[Keyboard]:
    """The keyboard as one or more pages within `limits`.

    The last row (navigation: «Назад», «Отмена») stays on every page. Single-button rows
    are first paired up; if the keyboard still does not fit, it is cut into pages, each
    with a «Ещё» button (payload `more:<next page>`, the last page leading back to the first).
    """
    rows = [
        tuple(_short(b, limits.max_label) for b in row[i : i + limits.max_per_row])
        for row in keyboard.rows
        for i in range(0, len(row), limits.max_per_row)
    ]
    if _fits(rows, limits):
        return [replace(keyboard, rows=tuple(rows))]
    footer = [rows.pop()] if len(rows) > 1 else []
    if limits.max_per_row >= 2 and all(len(row) == 1 for row in rows):
        rows = [tuple(b for row in rows[i : i + 2] for b in row) for i in range(0, len(rows), 2)]
        if _fits(rows + footer, limits):
            return [replace(keyboard, rows=tuple(rows + footer))]
    room_rows = limits.max_rows - len(footer) - 1
    room_buttons = limits.max_buttons - sum(map(len, footer)) - 1
    if room_rows < 1 or room_buttons < 1:
        raise ValueError(f"limits {limits} leave no room for buttons")
    pages: list[list[tuple[Button, ...]]] = [[]]
    for row in rows:
        page = pages[-1]
        if len(page) + 1 > room_rows or sum(map(len, page)) + len(row) > room_buttons:
            pages.append([])
        pages[-1].append(row)
    result = []
    for index, page in enumerate(pages):
        more = Button(texts.MORE, f"{MORE_PREFIX}{(index + 1) % len(pages)}")
        result.append(replace(keyboard, rows=tuple([*page, (more,), *footer])))
    return result


class PageMemory:
    """The pages last shown in each chat, so a «Ещё» press can show the next one. A chat is a
    chat of one community (bot): `community` keeps two bots' chats with one person apart.
    Bounded; after a restart a «Ещё» press is answered as a stale button by the dialogue."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._pages: OrderedDict[tuple[str, str], list[Keyboard]] = OrderedDict()
        self._capacity = capacity

    def remember(self, chat_id: str, pages: list[Keyboard], community: str = "") -> None:
        key = (community, chat_id)
        self._pages.pop(key, None)
        if len(pages) > 1:
            self._pages[key] = pages
            while len(self._pages) > self._capacity:
                self._pages.popitem(last=False)

    def page(self, chat_id: str, payload: str | None, community: str = "") -> Keyboard | None:
        """The page a «Ещё» payload asks for, if this chat has one."""
        if payload is None or not payload.startswith(MORE_PREFIX):
            return None
        index = payload.removeprefix(MORE_PREFIX)
        pages = self._pages.get((community, chat_id))
        if pages is None or not index.isdecimal() or int(index) >= len(pages):
            return None
        return pages[int(index)]
