"""UTC timestamps as stored in the database: fixed-width ISO-8601 text that sorts correctly."""

from __future__ import annotations

from datetime import UTC, datetime


def to_db(moment: datetime) -> str:
    """Render an aware datetime as the database's UTC text, 2026-03-02T06:00:00.000000Z
    (isoformat, not strftime: it runs for every row written, and is several times faster)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given to the database; use an aware UTC time")
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def from_db(text: str) -> datetime:
    """Parse the database's UTC text back into an aware datetime (fromisoformat reads the
    trailing Z as UTC)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"database time without a zone: {text!r}")
    return moment
