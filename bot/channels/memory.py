"""An in-memory channel: a real channel with no wire, for tests and embedding.

`receive` pushes an update in as if a platform had delivered it; `sent` holds everything
the delivery worker sent through it, in order (errbot's test backend, here).
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import count

from bot.channels.base import Capabilities, Channel, Intake, Runtime, SendError
from handlers.messages import CommentEvent, Incoming, Location, Outgoing, Photo


class MemoryChannel(Channel):
    def __init__(self, platform: str = "memory", *, buttons: bool = True) -> None:
        self.platform = platform
        self.capabilities = Capabilities(buttons=buttons, photos=True, max_text=4096)
        self.sent: list[Outgoing] = []
        self.sent_ids: list[str] = []  # the platform message id of each of `sent`
        # chat id -> the error every send to that chat raises (a blocked bot, a lost chat)
        self.failures: dict[str, SendError] = {}
        self._intake: Intake | None = None
        self._ids = count(1)

    async def start(self, runtime: Runtime) -> None:
        self._intake = runtime.intake

    async def stop(self) -> None:
        self._intake = None

    async def send(self, message: Outgoing) -> list[str]:
        failure = self.failures.get(message.chat_id)
        if failure is not None:
            raise failure
        message_id = str(next(self._ids))
        self.sent.append(message)
        self.sent_ids.append(message_id)
        return [message_id]

    async def receive(
        self,
        user_id: str,
        text: str = "",
        *,
        payload: str | None = None,
        display_name: str = "",
        photos: tuple[Photo, ...] = (),
        location: Location | None = None,
        phone: str | None = None,
        event_id: str | None = None,
        reply_to: str | None = None,
        unsupported: bool = False,
        comment: CommentEvent | None = None,
    ) -> None:
        """Deliver an update from `user_id` (their private chat has the same id); with
        `comment`, a comment of theirs under a post of the community."""
        if self._intake is None:
            raise RuntimeError("channel is not started")
        await self._intake(
            Incoming(
                platform=self.platform,
                chat_id=user_id,
                user_id=user_id,
                received_at=datetime.now(UTC),
                text=text,
                display_name=display_name,
                payload=payload,
                photos=photos,
                location=location,
                phone=phone,
                event_id=event_id,
                reply_to=reply_to,
                unsupported=unsupported,
                comment=comment,
            )
        )

    def sent_to(self, chat_id: str) -> list[Outgoing]:
        return [m for m in self.sent if m.chat_id == chat_id]
