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


class Kind(StrEnum):
    """What an item of the №N sequence is (SPEC §14): an appeal filed through the dialogue,
    or a comment under a community's post."""

    APPEAL = "appeal"
    COMMENT = "comment"


@dataclass(frozen=True)
class Photo:
    """A photo as a platform gave it: its own file reference and, where known, a public URL."""

    platform: str
    ref: str
    url: str | None = None
    # The community (bot) it came through, where the reference is that bot's own (a
    # Telegram file_id can be fetched and sent again only by the bot that received it).
    community: str = ""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"platform": self.platform, "ref": self.ref, "url": self.url}
        if self.community:
            data["community"] = self.community
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Photo:
        return cls(
            platform=str(data["platform"]),
            ref=str(data["ref"]),
            url=data.get("url"),
            community=str(data.get("community") or ""),
        )


@dataclass(frozen=True)
class Resident:
    id: int
    platform: str
    user_id: str
    chat_id: str
    display_name: str | None
    consent_at: datetime | None
    consent_version: str | None
    community: str = ""  # the community (bot) they last wrote to: where they are reached


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
    kind: Kind = Kind.APPEAL
    community: str = ""  # where it came in; the resident is answered through it

    @property
    def is_comment(self) -> bool:
        return self.kind == Kind.COMMENT


@dataclass(frozen=True)
class Comment:
    """Where a comment item's comment is, and who wrote it (SPEC §14)."""

    number: int
    platform: str
    community: str
    owner_id: str
    post_id: str
    comment_id: str
    author_id: str
    author_link: str | None
    link: str
    deleted: bool = False


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
    community: str = ""  # the community (bot) it goes through; '' for the main one


@dataclass(frozen=True)
class InboxRow:
    """An update a webhook accepted: written before the 200, handled from here (SPEC §7)."""

    id: int
    platform: str
    community: str
    sender: str
    body: str
