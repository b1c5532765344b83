"""Degrading an outgoing message to what a channel can show, and splitting long text.

Shared by every channel, so a platform without buttons or photos still gets everything:
buttons become a numbered list (typing the number or the label presses them, SPEC §3),
photos become links.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.channels.base import Capabilities
from handlers import texts
from handlers.messages import Outgoing


def plain_text(message: Outgoing, capabilities: Capabilities) -> str:
    """The message's text with whatever the channel cannot render written into it."""
    parts = [message.text]
    if message.photos and not capabilities.photos:
        parts.append("\n".join(p.url or texts.PHOTOS_ONLY for p in message.photos))
    keyboard = message.keyboard
    if keyboard and keyboard.rows and not capabilities.buttons:
        buttons = keyboard.buttons
        if keyboard.numbered:
            parts.append("\n".join(f"{i}. {b.label}" for i, b in enumerate(buttons, 1)))
        else:
            parts.append(" · ".join(f"[{b.label}]" for b in buttons))
    return "\n\n".join(part for part in parts if part)


def utf16_length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji is usually two)."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int, measure: Callable[[str], int] = len) -> list[str]:
    """Cut text into chunks of at most `limit` (as `measure` counts: characters by default),
    preferring paragraph, line and word boundaries so that no word is broken unless a single
    word is longer than a chunk."""
    if limit <= 0:
        raise ValueError("limit must be positive")
    if measure(text) <= limit:
        return [text]
    chunks: list[str] = []
    rest = text.strip()
    while measure(rest) > limit:
        fit = _fitting(rest, limit, measure)
        cut = _best_cut(rest[: fit + 1], fit)
        chunks.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not chunks:
        chunks.append(rest)
    return chunks


def _fitting(text: str, limit: int, measure: Callable[[str], int]) -> int:
    """How many characters from the start of `text` fit within `limit`."""
    if measure is len:
        return min(limit, len(text))
    low, high = 1, min(limit, len(text))  # every character measures at least 1
    while low < high:
        middle = (low + high + 1) // 2
        if measure(text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    return low


def _best_cut(window: str, limit: int) -> int:
    """Where to end a chunk: the strongest boundary (paragraph, line, space) in the second
    half of the window; else the latest boundary of any kind; else the limit itself."""
    for separator in ("\n\n", "\n", " "):
        position = window.rfind(separator)
        if position > limit // 2:
            return position
    latest = max(window.rfind(separator) for separator in ("\n", " "))
    return latest if latest > 0 else limit
