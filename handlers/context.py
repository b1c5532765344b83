"""What a handler gets for one update: the message, its sender, the open transaction, and a
place to put replies. Prepared once by the engine, never fetched inside a handler."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from handlers.messages import Incoming, Keyboard, Outgoing, Photo
from handlers.settings import HandlerSettings
from storage.db import Tx
from storage.models import Resident
from storage.staff import StaffMember


@dataclass
class Context:
    message: Incoming
    tx: Tx
    settings: HandlerSettings
    now: datetime
    resident: Resident
    staff: StaffMember | None = None
    outgoing: list[Outgoing] = field(default_factory=list)

    def reply(
        self,
        text: str,
        keyboard: Keyboard | None = None,
        *,
        appeal_number: int | None = None,
    ) -> None:
        """Answer into the chat the message came from."""
        self.outgoing.append(
            Outgoing(
                platform=self.message.platform,
                chat_id=self.message.chat_id,
                text=text,
                keyboard=keyboard,
                appeal_number=appeal_number,
            )
        )

    def send(
        self,
        platform: str,
        chat_id: str,
        text: str,
        keyboard: Keyboard | None = None,
        *,
        photos: tuple[Photo, ...] = (),
        appeal_number: int | None = None,
    ) -> None:
        """Send to any chat on any platform (notifications, relayed answers)."""
        self.outgoing.append(Outgoing(platform, chat_id, text, keyboard, photos, appeal_number))
