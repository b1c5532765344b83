"""Appeals and their threads (every message and status change, in order)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

import aiosqlite

from storage.models import OPEN_STATUSES, Appeal, Photo, Status, ThreadEntry
from storage.times import from_db, to_db

_COLUMNS = (
    "id, resident_id, status, category, settlement, text, place, latitude, longitude, photos,"
    " contact_name, contact_phone, platform, chat_id, created_at, deadline_at"
)


def photos_to_json(photos: Sequence[Photo]) -> str:
    return json.dumps([p.to_dict() for p in photos], ensure_ascii=False)


def photos_from_json(text: str) -> tuple[Photo, ...]:
    return tuple(Photo.from_dict(item) for item in json.loads(text))


def _appeal(row: aiosqlite.Row) -> Appeal:
    return Appeal(
        number=row["id"],
        resident_id=row["resident_id"],
        status=Status(row["status"]),
        category=row["category"],
        settlement=row["settlement"],
        text=row["text"],
        place=row["place"],
        latitude=row["latitude"],
        longitude=row["longitude"],
        photos=photos_from_json(row["photos"]),
        contact_name=row["contact_name"],
        contact_phone=row["contact_phone"],
        platform=row["platform"],
        chat_id=row["chat_id"],
        created_at=from_db(row["created_at"]),
        deadline_at=from_db(row["deadline_at"]),
    )


class AppealRepository:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def create(
        self,
        *,
        resident_id: int,
        category: str,
        settlement: str,
        text: str,
        place: str | None,
        latitude: float | None,
        longitude: float | None,
        photos: Sequence[Photo],
        contact_name: str | None,
        contact_phone: str | None,
        platform: str,
        chat_id: str,
        created_at: datetime,
        deadline_at: datetime,
    ) -> Appeal:
        """Register an appeal; its number is the next in the deployment's sequence."""
        async with self._conn.execute(
            "INSERT INTO appeals (resident_id, category, settlement, text, place, latitude,"
            " longitude, photos, contact_name, contact_phone, platform, chat_id, created_at,"
            " deadline_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            f" RETURNING {_COLUMNS}",
            (
                resident_id,
                category,
                settlement,
                text,
                place,
                latitude,
                longitude,
                photos_to_json(photos),
                contact_name,
                contact_phone,
                platform,
                chat_id,
                to_db(created_at),
                to_db(deadline_at),
                to_db(created_at),
            ),
        ) as cursor:
            row = await cursor.fetchone()
        assert row is not None
        return _appeal(row)

    async def get(self, number: int) -> Appeal | None:
        async with self._conn.execute(
            f"SELECT {_COLUMNS} FROM appeals WHERE id = ?", (number,)
        ) as cursor:
            row = await cursor.fetchone()
        return _appeal(row) if row else None

    async def of_resident(
        self, resident_id: int, *, limit: int, open_only: bool = False
    ) -> list[Appeal]:
        """The resident's appeals, newest first."""
        where = "resident_id = ?"
        params: list[object] = [resident_id]
        if open_only:
            where += f" AND status IN ({', '.join('?' for _ in OPEN_STATUSES)})"
            params.extend(str(s) for s in OPEN_STATUSES)
        params.append(limit)
        async with self._conn.execute(
            f"SELECT {_COLUMNS} FROM appeals WHERE {where} ORDER BY id DESC LIMIT ?", params
        ) as cursor:
            rows = await cursor.fetchall()
        return [_appeal(row) for row in rows]

    async def set_status(self, number: int, status: Status, now: datetime) -> None:
        await self._conn.execute(
            "UPDATE appeals SET status = ?, updated_at = ? WHERE id = ?",
            (str(status), to_db(now), number),
        )

    async def erase_contacts_of_resident(self, resident_id: int) -> int:
        """Anonymise a resident's appeals (name and phone); returns how many were touched."""
        async with self._conn.execute(
            "UPDATE appeals SET contact_name = NULL, contact_phone = NULL"
            " WHERE resident_id = ? AND (contact_name IS NOT NULL OR contact_phone IS NOT NULL)",
            (resident_id,),
        ) as cursor:
            return cursor.rowcount


class ThreadRepository:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def add(
        self,
        appeal_number: int,
        *,
        kind: str,
        author: str,
        now: datetime,
        text: str | None = None,
        photos: Sequence[Photo] = (),
        status: Status | None = None,
    ) -> None:
        await self._conn.execute(
            "INSERT INTO appeal_events (appeal_id, kind, author, text, photos, status, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                appeal_number,
                kind,
                author,
                text,
                photos_to_json(photos),
                str(status) if status else None,
                to_db(now),
            ),
        )

    async def of_appeal(self, appeal_number: int, kinds: Sequence[str] = ()) -> list[ThreadEntry]:
        """The appeal's thread in order, optionally only entries of the given kinds."""
        sql = (
            "SELECT appeal_id, kind, author, text, photos, status, created_at"
            " FROM appeal_events WHERE appeal_id = ?"
        )
        params: list[object] = [appeal_number]
        if kinds:
            sql += f" AND kind IN ({', '.join('?' for _ in kinds)})"
            params.extend(kinds)
        async with self._conn.execute(sql + " ORDER BY id", params) as cursor:
            rows = await cursor.fetchall()
        return [
            ThreadEntry(
                appeal_number=row["appeal_id"],
                kind=row["kind"],
                author=row["author"],
                text=row["text"],
                photos=photos_from_json(row["photos"]),
                status=Status(row["status"]) if row["status"] else None,
                created_at=from_db(row["created_at"]),
            )
            for row in rows
        ]
