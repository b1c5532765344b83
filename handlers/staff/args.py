"""Strict parsing of staff command arguments: appeal numbers (57 or №57), identities, dates."""

from __future__ import annotations

import re
from datetime import date, datetime

from handlers.identity import parse_identity
from handlers.text_input import fold, visible_length

_NUMBER = re.compile(r"№?\s*(\d{1,9})")
MAX_NUMBER = 999_999_999
AFTER = "после"  # `/list all после 57`: the page that follows appeal №57


class UsageError(Exception):
    """The arguments do not fit the command; the person gets its usage line."""


def number_and_text(rest: str, *, text: str = "required") -> tuple[int, str]:
    """An appeal number, then free text: `text` is "required", "optional" or "none"."""
    match = _NUMBER.match(rest)
    if not match:
        raise UsageError
    after = rest[match.end() :]
    if after and not after[0].isspace():
        raise UsageError  # «57abc»
    body = _visible(after)
    if (text == "required" and not body) or (text == "none" and body):
        raise UsageError
    return int(match.group(1)), body


def _visible(text: str) -> str:
    """The text, or "" if nothing of it can be seen (spaces, zero-width characters, bidi
    controls): an answer of two U+200B is no answer (SPEC §12)."""
    text = text.strip()
    return text if visible_length(text) else ""


def split_after(rest: str) -> tuple[str, int | None]:
    """`all после №57` → ("all", 57); `all` → ("all", None)."""
    words = rest.split()
    for index, word in enumerate(words):
        if fold(word) == AFTER:
            match = _NUMBER.fullmatch("".join(words[index + 1 :]))
            if not match:
                raise UsageError
            return " ".join(words[:index]), int(match.group(1))
    return rest.strip(), None


def identity_and_text(rest: str) -> tuple[str, str]:
    head, _, body = rest.partition(" ")
    if not head:
        raise UsageError
    try:
        parse_identity(head)
    except ValueError as error:
        raise UsageError(str(error)) from error
    return head, _visible(body)


def parse_date(text: str) -> date:
    """ДД.ММ.ГГГГ or ГГГГ-ММ-ДД."""
    for fmt in ("%d.%m.%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(text)
