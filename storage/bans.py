"""Banned identities: their messages are acknowledged once, then ignored (SPEC §6)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from storage.backend import Connection
from storage.times import to_db


@dataclass(frozen=True)
class Ban:
    identity: str
    reason: str | None
    notified: bool


class BanRepository:
    """Bans; within one update, a ban read at its arrival (`know`) is answered from memory,
    and every change in the update goes through this object, which forgets what it changed."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._known: dict[str, Ban | None] = {}

    def know(self, identity: str, ban: Ban | None) -> None:
        self._known[identity] = ban

    async def get(self, identity: str) -> Ban | None:
        if identity in self._known:
            return self._known[identity]
        row = await self._conn.fetchone(
            "SELECT identity, reason, notified FROM bans WHERE identity = ?", (identity,)
        )
        return Ban(row[0], row[1], bool(row[2])) if row else None

    async def ban(self, identity: str, reason: str | None, banned_by: str, now: datetime) -> bool:
        """Ban; False if the identity was banned already (its reason is updated)."""
        existing = await self.get(identity)
        self._known.pop(identity, None)
        await self._conn.execute(
            "INSERT INTO bans (identity, reason, banned_by, banned_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (identity) DO UPDATE SET reason = excluded.reason",
            (identity, reason, banned_by, to_db(now)),
        )
        return existing is None

    async def unban(self, identity: str) -> bool:
        self._known.pop(identity, None)
        return (await self._conn.execute("DELETE FROM bans WHERE identity = ?", (identity,))) == 1

    async def mark_notified(self, identity: str) -> None:
        self._known.pop(identity, None)
        self._conn.post("UPDATE bans SET notified = 1 WHERE identity = ?", (identity,))
