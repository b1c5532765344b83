"""Channel state: small named values a channel keeps across restarts."""

from __future__ import annotations

from datetime import datetime

from storage.backend import Connection
from storage.times import to_db


class ChannelStateRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def get(self, key: str) -> str | None:
        row = await self._conn.fetchone("SELECT value FROM channel_state WHERE key = ?", (key,))
        return str(row[0]) if row else None

    async def set(self, key: str, value: str, now: datetime) -> None:
        await self._conn.execute(
            "INSERT INTO channel_state (key, value, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
            " updated_at = excluded.updated_at",
            (key, value, to_db(now)),
        )
