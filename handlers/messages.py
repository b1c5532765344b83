"""Normalized messages: what every channel turns its platform's updates into, and back.

A channel builds an `Incoming` from an update and renders an `Outgoing` into its own format;
the dialogue sees and produces only these, so it runs the same on every messenger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from storage.models import Photo

__all__ = [
    "Button",
    "CommentEvent",
    "CommentTarget",
    "Incoming",
    "Keyboard",
    "Location",
    "Outgoing",
    "Photo",
]

# What happened to a comment under a post (SPEC §14).
COMMENT_NEW = "new"
COMMENT_EDIT = "edit"
COMMENT_DELETE = "delete"


@dataclass(frozen=True)
class Location:
    latitude: float
    longitude: float


@dataclass(frozen=True)
class Button:
    """A button: the exact label a person sees and the payload the bot gets back."""

    label: str
    payload: str


@dataclass(frozen=True)
class Keyboard:
    """Rows of buttons. `numbered`: the step expects a choice, so a typed number presses one.
    `inline`: the buttons act on this very message (rating an answer), so platforms that
    can show them under it do; other keyboards are the conversation's reply options.
    `menu`: the main menu, which a platform may keep under the input box (Telegram's reply
    keyboard); pressing it sends the label as text. `asks`: what the question wants that a
    platform may ask for with a button of its own ("location": MAX request_geo_location,
    "contact": request_contact); a platform without such buttons ignores it."""

    rows: tuple[tuple[Button, ...], ...] = ()
    numbered: bool = False
    inline: bool = False
    menu: bool = False  # the standing main menu: a platform may keep it under the input box
    asks: str | None = None  # "location" or "contact"

    @property
    def buttons(self) -> tuple[Button, ...]:
        return tuple(button for row in self.rows for button in row)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "rows": [[[b.label, b.payload] for b in row] for row in self.rows],
            "numbered": self.numbered,
            "inline": self.inline,
            "menu": self.menu,
        }
        if self.asks is not None:
            data["asks"] = self.asks
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Keyboard:
        rows = tuple(tuple(Button(str(b[0]), str(b[1])) for b in row) for row in data["rows"])
        return cls(
            rows=rows,
            numbered=bool(data.get("numbered", False)),
            inline=bool(data.get("inline", False)),
            menu=bool(data.get("menu", False)),
            asks=str(data["asks"]) if data.get("asks") else None,
        )


@dataclass(frozen=True)
class CommentEvent:
    """A comment under a community's post, as a channel read it (SPEC §14): what happened
    to it (`action`: COMMENT_NEW, COMMENT_EDIT or COMMENT_DELETE) and where it is. The
    comment's text and author are the message's own `text`, `user_id` and `display_name`."""

    action: str
    owner_id: str  # VK: the wall, -group_id; MAX: the channel's chat id
    post_id: str
    comment_id: str
    link: str  # the comment, for staff to open
    author_link: str | None = None  # the author's public profile


@dataclass(frozen=True)
class CommentTarget:
    """Where a public answer goes: under comment `reply_to` of post `post_id` on
    `owner_id`'s wall (VK wall.createComment, MAX POST /messages/{mid}/comments)."""

    owner_id: str
    post_id: str
    reply_to: str

    def to_dict(self) -> dict[str, str]:
        return {"owner_id": self.owner_id, "post_id": self.post_id, "reply_to": self.reply_to}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CommentTarget:
        return cls(str(data["owner_id"]), str(data["post_id"]), str(data["reply_to"]))


@dataclass(frozen=True)
class Incoming:
    """One update from a person, in any messenger's terms.

    `event_id` is the platform's id of the update (for once-only processing); `reply_to` the
    id of the bot's message that this one quotes; `unsupported` marks stickers, voice, files.
    `community`: which community (bot) of the platform it came to, '' for the platform's main
    section (SPEC §14); `start`: a deep link's payload (MAX `bot_started`); `comment`: set
    when this is a comment under a post rather than a message in a private chat.
    """

    platform: str
    chat_id: str
    user_id: str
    received_at: datetime
    text: str = ""
    display_name: str = ""
    payload: str | None = None
    photos: tuple[Photo, ...] = ()
    location: Location | None = None
    phone: str | None = None
    event_id: str | None = None
    reply_to: str | None = None
    unsupported: bool = False
    community: str = ""
    start: str | None = None
    comment: CommentEvent | None = None

    @property
    def identity(self) -> str:
        """`platform:user_id`, the form staff identities are written in (SPEC §5)."""
        return f"{self.platform}:{self.user_id}"

    @property
    def is_empty(self) -> bool:
        return not (self.text or self.payload or self.photos or self.location or self.phone)


@dataclass(frozen=True)
class Outgoing:
    """A message to send: text, optional buttons and photos, and the appeal it concerns."""

    platform: str
    chat_id: str
    text: str
    keyboard: Keyboard | None = None
    photos: tuple[Photo, ...] = field(default=())
    appeal_number: int | None = None
    # A report about another message that could not be delivered: if it fails in turn,
    # nobody is told about that (no chain of reports between unreachable moderators).
    report: bool = False
    # The outbox row carrying it, set by the delivery worker: a channel derives idempotency
    # keys from it (VK random_id), so a resend after a crash is recognised as the same message.
    outbox_id: int | None = None
    # The community (bot) it goes through: a person is written to through the community
    # they wrote to ('' for the platform's main one, SPEC §14).
    community: str = ""
    # A public answer under a comment instead of a message into a chat (SPEC §14).
    comment: CommentTarget | None = None

    def body(self) -> dict[str, Any]:
        """The JSON-ready body kept in the outbox."""
        body: dict[str, Any] = {
            "text": self.text,
            "keyboard": self.keyboard.to_dict() if self.keyboard else None,
            "photos": [p.to_dict() for p in self.photos],
        }
        if self.report:
            body["report"] = True
        if self.comment is not None:
            body["comment"] = self.comment.to_dict()
        return body

    @classmethod
    def from_body(
        cls,
        platform: str,
        chat_id: str,
        body: dict[str, Any],
        appeal_number: int | None,
        outbox_id: int | None = None,
        community: str = "",
    ) -> Outgoing:
        keyboard = body.get("keyboard")
        comment = body.get("comment")
        return cls(
            platform=platform,
            chat_id=chat_id,
            text=str(body["text"]),
            keyboard=Keyboard.from_dict(keyboard) if keyboard else None,
            photos=tuple(Photo.from_dict(p) for p in body.get("photos", [])),
            appeal_number=appeal_number,
            report=bool(body.get("report", False)),
            outbox_id=outbox_id,
            community=community,
            comment=CommentTarget.from_dict(comment) if comment else None,
        )
