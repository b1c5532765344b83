"""Reading what a person typed: cleaning, visible length, button matching, phone numbers."""

from __future__ import annotations

import re
import unicodedata

from handlers.messages import Button, Incoming, Keyboard

_KEEP_CONTROLS = {"\n", "\t"}
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")  # terminal colour and cursor sequences
_LINE_BREAKS = re.compile("\r\n|[\r\x85\u2028\u2029]")


def clean_text(text: str) -> str:
    """Drop control characters (but newlines and tabs), terminal escape sequences and lone
    surrogates (they cannot be stored as UTF-8); normalise line breaks; trim the ends.

    Everything else — emoji, RTL text, zero-width joiners, SQL or markup fragments — is kept
    verbatim: it is stored as data and never interpreted.
    """
    text = _ANSI_ESCAPE.sub("", text)
    text = _LINE_BREAKS.sub("\n", text)
    text = "".join(
        ch for ch in text if ch in _KEEP_CONTROLS or unicodedata.category(ch) not in ("Cc", "Cs")
    )
    return text.strip()


def visible_length(text: str) -> int:
    """Characters a reader sees: format characters (zero-width and the like), combining
    marks and spaces do not make a description long enough."""
    return sum(
        1
        for ch in text
        if unicodedata.category(ch) not in ("Cf", "Cc", "Mn", "Me") and not ch.isspace()
    )


def _fold(text: str) -> str:
    return " ".join(text.casefold().split())


def is_one_of(text: str, words: tuple[str, ...]) -> bool:
    folded = _fold(text)
    return any(folded == _fold(word) for word in words)


def pressed_button(message: Incoming, keyboard: Keyboard) -> Button | None:
    """The button of `keyboard` this message presses: its payload, its label typed (case and
    surrounding spaces ignored), or — on a choice step — its number in the list."""
    buttons = keyboard.buttons
    if message.payload is not None:
        return next((b for b in buttons if b.payload == message.payload), None)
    if not message.text:
        return None
    folded = _fold(message.text)
    for button in buttons:
        if _fold(button.label) == folded:
            return button
    if keyboard.numbered and folded.isascii() and folded.isdecimal() and len(folded) <= 3:
        index = int(folded) - 1
        if 0 <= index < len(buttons):
            return buttons[index]
    return None


_PHONE_SEPARATORS = re.compile(r"[\s\-()\u00a0.]")


def normalize_phone(text: str) -> str | None:
    """A Russian phone number as +7XXXXXXXXXX, or None if `text` is not one.

    Accepts +7…, 7…, 8… with 10 digits after the country code, and a bare 10-digit number
    starting with 9 (mobile), with spaces, dashes, dots and brackets anywhere.
    """
    compact = _PHONE_SEPARATORS.sub("", text.strip())
    if compact.startswith("+"):
        if not compact.startswith("+7"):
            return None
        digits = compact[2:]
    elif len(compact) == 11 and compact[0] in "78":
        digits = compact[1:]
    elif len(compact) == 10 and compact.startswith("9"):
        digits = compact
    else:
        return None
    if len(digits) != 10 or not digits.isascii() or not digits.isdigit():
        return None
    if digits[0] not in "3489":  # Russian geographic (3, 4, 8) and mobile (9) codes
        return None
    return "+7" + digits
