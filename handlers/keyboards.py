"""The buttons of the conversation: labels from texts, payloads short and stable.

Payloads stay well inside every platform's limit (Telegram callback data: 64 bytes).
"""

from __future__ import annotations

from collections.abc import Iterable

from handlers import texts
from handlers.messages import Button, Keyboard

NEW = Button(texts.NEW_APPEAL, "menu:new")
MINE = Button(texts.MY_APPEALS, "menu:mine")
HELP = Button(texts.HELP, "menu:help")
FORGET = Button(texts.FORGET_ME, "menu:forget")
BACK = Button(texts.BACK, "nav:back")
CANCEL = Button(texts.CANCEL, "nav:cancel")
SKIP = Button(texts.SKIP, "skip")
DONE = Button(texts.DONE, "done")

RATE_PREFIX = "rate:"
MENU_PAYLOADS = frozenset(b.payload for b in (NEW, MINE, HELP, FORGET))


def rating_keyboard(number: int) -> Keyboard:
    """Shown under an answer. Not numbered: typed «1» in the menu stays «Подать обращение»."""
    return Keyboard(
        rows=(
            (
                Button(texts.RESOLVED, f"{RATE_PREFIX}{number}:yes"),
                Button(texts.UNRESOLVED, f"{RATE_PREFIX}{number}:no"),
            ),
        ),
        inline=True,
    )


def main_menu() -> Keyboard:
    return Keyboard(rows=((NEW,), (MINE,), (HELP,)), numbered=True, menu=True)


def help_menu() -> Keyboard:
    """The main menu and «Удалить мои данные»: the same numbers mean the same buttons."""
    return Keyboard(rows=((NEW,), (MINE,), (HELP,), (FORGET,)), numbered=True, menu=True)


def nav_row(*, back: bool = True) -> tuple[Button, ...]:
    return (BACK, CANCEL) if back else (CANCEL,)


def one_per_row(
    buttons: Iterable[Button], last_row: tuple[Button, ...], *, numbered: bool
) -> Keyboard:
    """A column of buttons (readable on a phone) with a navigation row under it."""
    rows: list[tuple[Button, ...]] = [(b,) for b in buttons]
    if last_row:
        rows.append(last_row)
    return Keyboard(rows=tuple(rows), numbered=numbered)
