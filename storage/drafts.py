"""Dialogue drafts: the step each identity is on and what it entered, saved after every answer."""

from __future__ import annotations

import copy
import json
from datetime import datetime

from storage.backend import Connection
from storage.models import Draft
from storage.times import from_db, to_db


class DraftRepository:
    """Drafts; within one update, a draft read at its arrival (`know`) or written since is
    answered from memory: every change to it in the update goes through this object."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._known: dict[tuple[str, str], Draft | None] = {}

    def know(self, platform: str, user_id: str, draft: Draft | None) -> None:
        self._known[(platform, user_id)] = draft

    async def get(self, platform: str, user_id: str) -> Draft | None:
        key = (platform, user_id)
        if key in self._known:
            known = self._known[key]
            return (
                None
                if known is None
                else Draft(known.step, copy.deepcopy(known.data), known.updated_at)
            )
        row = await self._conn.fetchone(
            "SELECT step, data, updated_at FROM drafts WHERE platform = ? AND user_id = ?",
            (platform, user_id),
        )
        if row is None:
            return None
        return Draft(step=row[0], data=json.loads(row[1]), updated_at=from_db(row[2]))

    async def save(self, platform: str, user_id: str, draft: Draft, now: datetime) -> None:
        self._known[(platform, user_id)] = Draft(draft.step, dict(draft.data), now)
        self._conn.post(
            "INSERT INTO drafts (platform, user_id, step, data, updated_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (platform, user_id) DO UPDATE SET step = excluded.step,"
            " data = excluded.data, updated_at = excluded.updated_at",
            (platform, user_id, draft.step, json.dumps(draft.data, ensure_ascii=False), to_db(now)),
        )

    async def delete(self, platform: str, user_id: str) -> None:
        self._known[(platform, user_id)] = None
        self._conn.post(
            "DELETE FROM drafts WHERE platform = ? AND user_id = ?", (platform, user_id)
        )

    async def purge_older_than(self, cutoff: datetime) -> int:
        """Drop drafts untouched since `cutoff`; returns how many were dropped."""
        self._known.clear()
        return await self._conn.execute("DELETE FROM drafts WHERE updated_at < ?", (to_db(cutoff),))
