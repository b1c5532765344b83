"""Residents: one row per messenger identity, with the consent they gave (152-ФЗ)."""

from __future__ import annotations

from datetime import datetime

from storage.backend import Connection, Row
from storage.models import Resident
from storage.times import from_db, to_db

_COLUMNS = "id, platform, user_id, chat_id, display_name, consent_at, consent_version, community"


def _resident(row: Row) -> Resident:
    return Resident(
        id=row["id"],
        platform=row["platform"],
        user_id=row["user_id"],
        chat_id=row["chat_id"],
        display_name=row["display_name"],
        consent_at=from_db(row["consent_at"]) if row["consent_at"] else None,
        consent_version=row["consent_version"],
        community=row["community"],
    )


class ResidentRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def get(self, resident_id: int) -> Resident | None:
        row = await self._conn.fetchone(
            f"SELECT {_COLUMNS} FROM residents WHERE id = ?", (resident_id,)
        )
        return _resident(row) if row else None

    async def find(self, platform: str, user_id: str) -> Resident | None:
        row = await self._conn.fetchone(
            f"SELECT {_COLUMNS} FROM residents WHERE platform = ? AND user_id = ?",
            (platform, user_id),
        )
        return _resident(row) if row else None

    async def by_chat(self, platform: str, chat_id: str) -> Resident | None:
        """Who the bot talks to in this chat (the latest to write from it)."""
        row = await self._conn.fetchone(
            f"SELECT {_COLUMNS} FROM residents WHERE platform = ? AND chat_id = ?"
            " ORDER BY id DESC LIMIT 1",
            (platform, chat_id),
        )
        return _resident(row) if row else None

    async def get_or_create(
        self,
        platform: str,
        user_id: str,
        chat_id: str,
        now: datetime,
        *,
        known: Resident | None = None,
        community: str = "",
        keep_chat: bool = False,
    ) -> Resident:
        """The resident behind an identity; the chat id and the community they wrote to are
        kept current (nothing else personal). No statement when `known` (read at the
        update's arrival) is current, which is nearly every message; one otherwise.
        `keep_chat`: this update came from somewhere else than their private chat (a comment
        under a post): an existing resident's chat and community stay as they are."""
        if known is not None and (
            keep_chat or (known.chat_id == chat_id and known.community == community)
        ):
            return known
        update = (
            "NOTHING"
            if keep_chat
            else "UPDATE SET chat_id = excluded.chat_id, community = excluded.community"
        )
        row = await self._conn.fetchone(
            "INSERT INTO residents (platform, user_id, chat_id, community, created_at)"
            f" VALUES (?, ?, ?, ?, ?) ON CONFLICT (platform, user_id) DO {update}"
            f" RETURNING {_COLUMNS}",
            (platform, user_id, chat_id, community, to_db(now)),
        )
        if row is None:  # DO NOTHING on a resident the arrival did not know (a race)
            found = await self.find(platform, user_id)
            assert found is not None
            return found
        resident = _resident(row)
        if not keep_chat:  # every private chat they had, for /forget (migration 0009)
            self._conn.post(
                "INSERT INTO resident_chats (resident_id, community, chat_id) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (resident.id, community, chat_id),
            )
        return resident

    async def give_consent(
        self,
        resident_id: int,
        *,
        version: str,
        text_hash: str,
        display_name: str | None,
        now: datetime,
    ) -> None:
        self._conn.post(
            "UPDATE residents SET consent_at = ?, consent_version = ?, consent_text_hash = ?,"
            " consent_platform = platform, display_name = ? WHERE id = ?",
            (to_db(now), version, text_hash, display_name, resident_id),
        )

    async def withdraw_consent(self, resident_id: int) -> None:
        """Forget the consent and the name; the identity row stays so the chat still works."""
        self._conn.post(
            "UPDATE residents SET consent_at = NULL, consent_version = NULL,"
            " consent_text_hash = NULL, consent_platform = NULL, display_name = NULL"
            " WHERE id = ?",
            (resident_id,),
        )
