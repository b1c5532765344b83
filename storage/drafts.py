"""Dialogue drafts: the step each identity is on and what it entered, saved after every answer."""

from __future__ import annotations

import json
from datetime import datetime

from storage.models import Draft
from storage.sqlite import Connection
from storage.times import from_db, to_db


class DraftRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def get(self, platform: str, user_id: str) -> Draft | None:
        async with self._conn.execute(
            "SELECT step, data, updated_at FROM drafts WHERE platform = ? AND user_id = ?",
            (platform, user_id),
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return None
        return Draft(step=row[0], data=json.loads(row[1]), updated_at=from_db(row[2]))

    async def save(self, platform: str, user_id: str, draft: Draft, now: datetime) -> None:
        await self._conn.execute(
            "INSERT INTO drafts (platform, user_id, step, data, updated_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (platform, user_id) DO UPDATE SET step = excluded.step,"
            " data = excluded.data, updated_at = excluded.updated_at",
            (platform, user_id, draft.step, json.dumps(draft.data, ensure_ascii=False), to_db(now)),
        )

    async def delete(self, platform: str, user_id: str) -> None:
        await self._conn.execute(
            "DELETE FROM drafts WHERE platform = ? AND user_id = ?", (platform, user_id)
        )

    async def purge_older_than(self, cutoff: datetime) -> int:
        """Drop drafts untouched since `cutoff`; returns how many were dropped."""
        async with self._conn.execute(
            "DELETE FROM drafts WHERE updated_at < ?", (to_db(cutoff),)
        ) as cursor:
            return cursor.rowcount
