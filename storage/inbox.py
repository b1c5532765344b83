"""The inbox: updates a webhook accepted, written before the platform hears 200 and handled
from here, so a crash or a stop after the 200 loses none of them (SPEC §7)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from storage.backend import Connection
from storage.models import InboxRow
from storage.times import to_db


class InboxRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def add(
        self,
        platform: str,
        community: str,
        event_id: str | None,
        sender: str,
        body: str,
        now: datetime,
    ) -> bool:
        """Keep an accepted update; False if one with the same event id is there already
        (the platform delivered it again)."""
        return (
            await self._conn.execute(
                "INSERT INTO inbox (platform, community, event_id, sender, body, received_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (platform, community, event_id, sender, body, to_db(now)),
            )
        ) == 1

    async def pending(self, platforms: Sequence[str], limit: int) -> list[InboxRow]:
        """The oldest updates of these platforms not yet handled, in the order accepted."""
        if not platforms:
            return []
        marks = ", ".join("?" for _ in platforms)
        rows = await self._conn.fetchall(
            "SELECT id, platform, community, sender, body FROM inbox"
            f" WHERE done_at IS NULL AND platform IN ({marks}) ORDER BY id LIMIT ?",
            (*platforms, limit),
        )
        return [InboxRow(row[0], row[1], row[2], row[3], row[4]) for row in rows]

    async def pending_count(self) -> int:
        row = await self._conn.fetchone("SELECT count(*) FROM inbox WHERE done_at IS NULL")
        return int(row[0]) if row else 0

    async def mark_done(self, inbox_id: int, now: datetime) -> bool:
        """The update was handled (in the transaction of its effects); False if it had been
        marked before (by another instance reading the same inbox)."""
        return (
            await self._conn.execute(
                "UPDATE inbox SET done_at = ? WHERE id = ? AND done_at IS NULL",
                (to_db(now), inbox_id),
            )
        ) == 1
