"""Presenting stored values to people: local times, appeal summaries, lists."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from handlers import texts


def local_time(moment: datetime, tz: ZoneInfo) -> str:
    """`29.11.2026 20:06` in the deployment's time zone."""
    return moment.astimezone(tz).strftime("%d.%m.%Y %H:%M")


def local_date(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%d.%m.%Y")


def utc_offset(moment: datetime, tz: ZoneInfo) -> str:
    """`UTC+5` — how the deployment's time zone relates to UTC at that moment."""
    offset = moment.astimezone(tz).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


def status_title(status: str) -> str:
    return texts.STATUS_TITLES.get(status, status)


def status_word(status: str) -> str:
    """The status in the middle of a sentence: «уже закрыто», not «уже Закрыто»."""
    return texts.STATUS_WORDS.get(status, status)


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
