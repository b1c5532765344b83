"""Reading what a person typed: cleaning, visible length, button matching, phone numbers."""

from __future__ import annotations

import functools
import re
import unicodedata

from handlers import texts
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


# Explicit directional formatting: embeddings, overrides and isolates (U+202A–U+202E,
# U+2066–U+2069). Unbalanced, they reorder whatever follows them on the reader's screen.
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
_FINAL_PUNCTUATION = ".!?…"


def neutralise_bidi(text: str) -> str:
    """`text` for staff to read: without the bidi controls that could make a resident's
    text (or name) display in another order than it was written, or spill over into the
    words of the message around it. The stored text keeps them (it is data, SPEC §12); the
    marks LRM/RLM, which move nothing but a neighbouring character, stay."""
    return _BIDI_CONTROLS.sub("", text)


def fold(text: str) -> str:
    """Typed text as it is compared with labels and words: case, ё/е, commas, repeated
    spaces and a final «.», «!», «?» or «…» do not matter («вопрос решен!» is «Вопрос
    решён», «Да, удалить» is «да удалить»)."""
    folded = text.casefold().replace("ё", "е").replace(",", " ")
    return " ".join(folded.split()).rstrip(_FINAL_PUNCTUATION).rstrip()


@functools.lru_cache(maxsize=1024)
def _folded(label: str) -> str:
    """`fold` of a label or a fixed word: the same few hundred strings for every message."""
    return fold(label)


def is_one_of(text: str, words: tuple[str, ...]) -> bool:
    folded = fold(text)
    return bool(folded) and any(folded == _folded(word) for word in words)


@functools.lru_cache(maxsize=1024)
def _aliases(label: str) -> frozenset[str]:
    return frozenset(fold(alias) for alias in texts.TYPED_ALIASES.get(label, ()))


def pressed_button(message: Incoming, keyboard: Keyboard) -> Button | None:
    """The button of `keyboard` this message presses: its payload, its label typed (folded,
    see `fold`), an obvious other answer to its question (texts.TYPED_ALIASES: «да» for
    «Согласен»), or — on a choice step — its number in the list."""
    buttons = keyboard.buttons
    if message.payload is not None:
        return next((b for b in buttons if b.payload == message.payload), None)
    if not message.text:
        return None
    folded = fold(message.text)
    if not folded:
        return None
    for button in buttons:
        if _folded(button.label) == folded:
            return button
    for button in buttons:
        if folded in _aliases(button.label):
            return button
    if keyboard.numbered and folded.isascii() and folded.isdecimal() and len(folded) <= 3:
        index = int(folded) - 1
        if 0 <= index < len(buttons):
            return buttons[index]
    return None


# Every fixed label of the dialogue's buttons but the main menu's (those do what they say
# wherever they are typed, handlers/dialogue/resident.py) and «Отмена» (a global word).
_DIALOGUE_LABELS = frozenset(
    fold(label)
    for label in (
        texts.AGREE,
        texts.DISAGREE,
        texts.BACK,
        texts.SKIP,
        texts.DONE,
        texts.KEEP_NAME,
        texts.SEND,
        texts.CONTINUE,
        texts.START_OVER,
        texts.NEW_INSTEAD,
        texts.FORGET_YES,
        texts.RESOLVED,
        texts.UNRESOLVED,
        texts.MORE,
    )
)
_ADD_TO = re.compile(re.escape(fold(texts.ADD_TO)).replace(re.escape("{number}"), r"\s*\d+"))


def button_label(text: str) -> str | None:
    """The dialogue button whose label `text` is, as typed, if any: a free-text step does
    not take «Пропустить» or «Дополнить №3» for an address or a description."""
    folded = fold(text)
    if folded in _DIALOGUE_LABELS or _ADD_TO.fullmatch(folded):
        return text.strip()
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


def split_command(text: str) -> tuple[str, str]:
    """`/reply@bot 57 текст` → ("reply", "57 текст"); the rest keeps its line breaks."""
    head, _, rest = text.strip().partition(" ")
    if "\n" in head:
        head, _, more = head.partition("\n")
        rest = more + (" " + rest if rest else "")
    return head[1:].split("@")[0].casefold(), rest.strip()
