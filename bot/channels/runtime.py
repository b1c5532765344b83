"""What the app lends a channel while it runs: where updates go, a place for small state
that must survive a restart, and the shared web server for webhooks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

from bot.inbox import Inbox
from bot.photos import PhotoUnavailable, fetch_url
from bot.ratelimit import RateLimiter
from bot.web import WebServer
from handlers.engine import Clock
from handlers.messages import Incoming, Photo
from storage.db import Store


class Intake(Protocol):
    """Hand in one update. `inbox_id`: the inbox row it came from, marked done in the
    transaction that handles it. Raises bot.inbox.IntakeClosed while the app stops."""

    def __call__(self, message: Incoming, *, inbox_id: int | None = None) -> Awaitable[None]: ...


class Admit(Protocol):
    """Whether a channel may answer an update by itself (a page of «Ещё»): the flood limit
    counts it like any other message (handlers/engine.py `Engine.admit`)."""

    def __call__(self, message: Incoming, *, inbox_id: int | None = None) -> Awaitable[bool]: ...


class PhotoSource(Protocol):
    """What the runtime needs of a running channel: the bytes of a photo it received
    (bot/channels/base.py `Channel.download`). A protocol, so that this module does not
    import the channel base class, which imports this one."""

    async def download(self, photo: Photo) -> bytes: ...


@dataclass
class Runtime:
    intake: Intake
    admit: Admit
    db: Store
    web: WebServer
    clock: Clock
    inbox: Inbox
    channels: Mapping[str, PhotoSource] = field(default_factory=dict)
    limiters: Mapping[str, RateLimiter] = field(default_factory=dict)

    @asynccontextmanager
    async def paced(self, platform: str, chat_id: str, community: str = "") -> AsyncIterator[None]:
        """Make one API call to `platform` in the block, in its turn (the configured send
        rates of that platform). Each community (bot) has a token of its own, and the
        platform counts each token apart: so does its pacing (`limiter_key`)."""
        limiter = self.limiters.get(limiter_key(platform, community))
        if limiter is None:
            yield
            return
        async with limiter.turn(chat_id):
            yield

    async def fetch_photo(self, photo: Photo) -> bytes:
        """A photo's bytes through the channel it came from (its URL if that channel is not
        running here). Raises PhotoUnavailable."""
        source = self.channels.get(photo.platform)
        if source is not None:
            return await source.download(photo)
        if not photo.url:
            raise PhotoUnavailable("no URL")
        return await fetch_url(photo.url)

    async def load(self, key: str) -> str | None:
        async with self.db.transaction() as tx:
            return await tx.channel_state.get(key)

    async def save(self, key: str, value: str) -> None:
        async with self.db.transaction() as tx:
            await tx.channel_state.set(key, value, self.clock())


def limiter_key(platform: str, community: str = "") -> str:
    """The pacing of a community's token: `vk` for the main section's, `vk/123` for others."""
    return f"{platform}/{community}" if community else platform
