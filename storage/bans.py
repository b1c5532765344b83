"""Banned identities: their messages are acknowledged once, then ignored (SPEC §6)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from storage.sqlite import Connection
from storage.times import to_db


@dataclass(frozen=True)
class Ban:
    identity: str
    reason: str | None
    notified: bool


class BanRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def get(self, identity: str) -> Ban | None:
        async with self._conn.execute(
            "SELECT identity, reason, notified FROM bans WHERE identity = ?", (identity,)
        ) as cursor:
            row = await cursor.fetchone()
        return Ban(row[0], row[1], bool(row[2])) if row else None

    async def ban(self, identity: str, reason: str | None, banned_by: str, now: datetime) -> bool:
        """Ban; False if the identity was banned already (its reason is updated)."""
        existing = await self.get(identity)
        await self._conn.execute(
            "INSERT INTO bans (identity, reason, banned_by, banned_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (identity) DO UPDATE SET reason = excluded.reason",
            (identity, reason, banned_by, to_db(now)),
        )
        return existing is None

    async def unban(self, identity: str) -> bool:
        async with self._conn.execute("DELETE FROM bans WHERE identity = ?", (identity,)) as cur:
            return cur.rowcount == 1

    async def mark_notified(self, identity: str) -> None:
        await self._conn.execute("UPDATE bans SET notified = 1 WHERE identity = ?", (identity,))
