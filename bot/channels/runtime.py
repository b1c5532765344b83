"""What the app lends a channel while it runs: where updates go, a place for small state
that must survive a restart, and the shared web server for webhooks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.web import WebServer
from handlers.engine import Clock
from handlers.messages import Incoming
from storage.db import Database

Intake = Callable[[Incoming], Awaitable[None]]


@dataclass
class Runtime:
    intake: Intake
    db: Database
    web: WebServer
    clock: Clock

    async def load(self, key: str) -> str | None:
        async with self.db.transaction() as tx:
            return await tx.channel_state.get(key)

    async def save(self, key: str, value: str) -> None:
        async with self.db.transaction() as tx:
            await tx.channel_state.set(key, value, self.clock())
