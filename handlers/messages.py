"""Normalized messages: what every channel turns its platform's updates into, and back.

A channel builds an `Incoming` from an update and renders an `Outgoing` into its own format;
the dialogue sees and produces only these, so it runs the same on every messenger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from storage.models import Photo

__all__ = ["Button", "Incoming", "Keyboard", "Location", "Outgoing", "Photo"]


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
class Incoming:
    """One update from a person, in any messenger's terms.

    `event_id` is the platform's id of the update (for once-only processing); `reply_to` the
    id of the bot's message that this one quotes; `unsupported` marks stickers, voice, files.
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

    def body(self) -> dict[str, Any]:
        """The JSON-ready body kept in the outbox."""
        body: dict[str, Any] = {
            "text": self.text,
            "keyboard": self.keyboard.to_dict() if self.keyboard else None,
            "photos": [p.to_dict() for p in self.photos],
        }
        if self.report:
            body["report"] = True
        return body

    @classmethod
    def from_body(
        cls,
        platform: str,
        chat_id: str,
        body: dict[str, Any],
        appeal_number: int | None,
        outbox_id: int | None = None,
    ) -> Outgoing:
        keyboard = body.get("keyboard")
        return cls(
            platform=platform,
            chat_id=chat_id,
            text=str(body["text"]),
            keyboard=Keyboard.from_dict(keyboard) if keyboard else None,
            photos=tuple(Photo.from_dict(p) for p in body.get("photos", [])),
            appeal_number=appeal_number,
            report=bool(body.get("report", False)),
            outbox_id=outbox_id,
        )
