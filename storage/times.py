"""UTC timestamps as stored in the database: fixed-width ISO-8601 text that sorts correctly."""

from __future__ import annotations

from datetime import UTC, datetime

_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def to_db(moment: datetime) -> str:
    """Render an aware datetime as the database's UTC text."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given to the database; use an aware UTC time")
    return moment.astimezone(UTC).strftime(_FORMAT)


def from_db(text: str) -> datetime:
    """Parse the database's UTC text back into an aware datetime."""
    return datetime.strptime(text, _FORMAT).replace(tzinfo=UTC)
