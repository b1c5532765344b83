"""What a handler gets for one update: the message, its sender, the open transaction, and a
place to put replies. Prepared once by the engine, never fetched inside a handler.

`Work` is the part that needs no message: what a staff action runs in, whichever way it is
called (a chat command, a quoted reply, later a dashboard form)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from handlers.messages import Incoming, Keyboard, Outgoing
from handlers.settings import HandlerSettings
from storage.db import Tx
from storage.models import Resident
from storage.reports import Figures
from storage.staff import StaffMember


@dataclass(frozen=True)
class Work:
    """The unit of work: the open transaction, the deployment's settings, the time of it."""

    tx: Tx
    settings: HandlerSettings
    now: datetime


@dataclass
class ReadAhead:
    """Long reads an update needs, done before its transaction on the read-only connection
    (`Database.read()`), so the writer is not held while they run: the figures of a year at
    a million appeals take about a second, and every resident's step would wait for them."""

    figures: dict[tuple[datetime, datetime], Figures] = field(default_factory=dict)


@dataclass
class Context:
    message: Incoming
    tx: Tx
    settings: HandlerSettings
    now: datetime
    resident: Resident
    staff: StaffMember | None = None
    outgoing: list[Outgoing] = field(default_factory=list)
    ahead: ReadAhead = field(default_factory=ReadAhead)
    # The settlement this conversation is preset to (a settlement's community, a deep link;
    # SPEC §14), set by the resident dialogue for the update at hand.
    preset_settlement: str | None = None

    @property
    def work(self) -> Work:
        return Work(self.tx, self.settings, self.now)

    def reply(
        self,
        text: str,
        keyboard: Keyboard | None = None,
        *,
        appeal_number: int | None = None,
    ) -> None:
        """Answer into the chat the message came from, through the community it came to."""
        self.outgoing.append(
            Outgoing(
                platform=self.message.platform,
                chat_id=self.message.chat_id,
                text=text,
                keyboard=keyboard,
                appeal_number=appeal_number,
                community=self.message.community,
            )
        )
