"""Records the repositories return: residents, appeals, thread entries, drafts, outbox rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """Appeal statuses (SPEC §7)."""

    NEW = "new"
    IN_PROGRESS = "in_progress"
    ANSWERED = "answered"
    CLOSED = "closed"
    REJECTED = "rejected"


OPEN_STATUSES = (Status.NEW, Status.IN_PROGRESS, Status.ANSWERED)


@dataclass(frozen=True)
class Photo:
    """A photo as a platform gave it: its own file reference and, where known, a public URL."""

    platform: str
    ref: str
    url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"platform": self.platform, "ref": self.ref, "url": self.url}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Photo:
        return cls(platform=str(data["platform"]), ref=str(data["ref"]), url=data.get("url"))


@dataclass(frozen=True)
class Resident:
    id: int
    platform: str
    user_id: str
    chat_id: str
    display_name: str | None
    consent_at: datetime | None
    consent_version: str | None


@dataclass(frozen=True)
class Appeal:
    number: int
    resident_id: int
    status: Status
    category: str
    settlement: str
    text: str
    place: str | None
    latitude: float | None
    longitude: float | None
    photos: tuple[Photo, ...]
    contact_name: str | None
    contact_phone: str | None
    platform: str
    chat_id: str
    created_at: datetime
    deadline_at: datetime
    rating: str | None = None
    first_answer_at: datetime | None = None


@dataclass(frozen=True)
class ThreadEntry:
    appeal_number: int
    kind: str
    author: str
    text: str | None
    photos: tuple[Photo, ...]
    status: Status | None
    created_at: datetime


@dataclass
class Draft:
    """A dialogue in progress: the step it waits on and what was entered so far."""

    step: str
    data: dict[str, Any] = field(default_factory=dict)
    updated_at: datetime | None = None


@dataclass(frozen=True)
class OutboxRow:
    """A queued message; `body` is its JSON text as written (read by the delivery worker)."""

    id: int
    platform: str
    chat_id: str
    body: str
    appeal_number: int | None
    attempts: int
    send_key: int | None = None  # random per row: VK's idempotency key (bot/channels/vk.py)


@dataclass(frozen=True)
class InboxRow:
    """An update a webhook accepted: written before the 200, handled from here (SPEC §7)."""

    id: int
    platform: str
    community: str
    sender: str
    body: str
