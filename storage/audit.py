"""The audit log: who did what to which appeal, and when."""

from __future__ import annotations

from datetime import datetime

from storage.backend import Connection
from storage.times import to_db


class AuditRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def add(
        self,
        actor: str,
        action: str,
        now: datetime,
        *,
        appeal_number: int | None = None,
        details: str | None = None,
    ) -> None:
        self._conn.post(
            "INSERT INTO audit_log (at, actor, action, appeal_id, details) VALUES (?, ?, ?, ?, ?)",
            (to_db(now), actor, action, appeal_number, details),
        )

    async def entries(self, appeal_number: int | None = None) -> list[tuple[str, str, int | None]]:
        """(actor, action, appeal number) rows in order, optionally for one appeal."""
        sql = "SELECT actor, action, appeal_id FROM audit_log"
        params: tuple[object, ...] = ()
        if appeal_number is not None:
            sql += " WHERE appeal_id = ?"
            params = (appeal_number,)
        rows = await self._conn.fetchall(sql + " ORDER BY id", params)
        return [(row[0], row[1], row[2]) for row in rows]
