"""What every messenger channel is: it receives updates, normalizes them, and renders and
sends normalized outgoing messages. It translates; it never decides what to say."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from bot.channels.runtime import Intake, Runtime
from bot.photos import PhotoUnavailable, fetch_url
from handlers.messages import Outgoing, Photo

__all__ = ["Capabilities", "Channel", "Intake", "Runtime", "SendError"]


@dataclass(frozen=True)
class Capabilities:
    """What a channel can render. Where it cannot, bot/render.py degrades the message
    (buttons become a numbered list, photos become links) in one place for all channels."""

    buttons: bool
    photos: bool
    max_text: int


class SendError(Exception):
    """A send failed. `retryable`: worth trying again later (network, 5xx, rate limit);
    `retry_after`: seconds the platform asked to wait, if it said."""

    def __init__(self, reason: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after


class Channel(ABC):
    platform: str
    capabilities: Capabilities
    # False where one person at a keyboard types everything (the demo's console): the
    # flood limit of [limits] messages_per_minute protects from strangers, not from them.
    flood_control: bool = True

    @abstractmethod
    async def start(self, runtime: Runtime) -> None:
        """Begin receiving; every update is handed to `runtime.intake`. Returns once
        started (webhook routes added to `runtime.web`, polling running in a task)."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop receiving. Sending may still be used until the app closes."""

    async def download(self, photo: Photo) -> bytes:
        """The bytes of a photo this channel received, for re-upload elsewhere. By default
        its public URL; a channel whose files need its token (Telegram) overrides this.
        Raises PhotoUnavailable."""
        if not photo.url:
            raise PhotoUnavailable("no URL")
        return await fetch_url(photo.url)

    @abstractmethod
    async def send(self, message: Outgoing) -> list[str]:
        """Deliver one message; returns the platform ids of the messages that carried it.
        Raises SendError when it could not."""
