"""Appeals and their threads (every message and status change, in order)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from storage.models import OPEN_STATUSES, Appeal, Photo, Status, ThreadEntry
from storage.reports import Figures, ReportQueries
from storage.sqlite import Connection, Row
from storage.times import from_db, to_db

_COLUMNS = (
    "id, resident_id, status, category, settlement, text, place, latitude, longitude, photos,"
    " contact_name, contact_phone, platform, chat_id, created_at, deadline_at, rating,"
    " first_answer_at"
)

# The deadline an unanswered appeal must now be answered by (SPEC §8): its registration
# deadline, or, once the resident reopened it with «Вопрос не решён» (which leaves rating =
# 'unresolved' until the next answer), `:renew` (e.g. '+24 hours') after that rating. It is
# computed, not stored: `deadline_at` stays the registration deadline, which the figures
# measure the first answer against. The microseconds are carried over from the rating's
# time, since SQLite's strftime keeps only milliseconds.
_DUE_AT = (
    "CASE WHEN a.rating = 'unresolved' THEN coalesce(("
    "SELECT strftime('%Y-%m-%dT%H:%M:%S', e.created_at, :renew) || substr(e.created_at, 20)"
    " FROM appeal_events e WHERE e.appeal_id = a.id AND e.kind = 'rating'"
    " ORDER BY e.id DESC LIMIT 1), a.deadline_at) ELSE a.deadline_at END"
)
# Appeals still waiting for an answer («Новое», «В работе»), each with its current deadline.
_WAITING = (
    f"SELECT a.*, {_DUE_AT} AS due_at FROM appeals a WHERE a.status IN ('new', 'in_progress')"
)
NOTICE_KINDS = frozenset({"reminder", "escalation"})


def _renew(hours: int) -> str:
    return f"+{int(hours)} hours"


def photos_to_json(photos: Sequence[Photo]) -> str:
    return json.dumps([p.to_dict() for p in photos], ensure_ascii=False)


def photos_from_json(text: str) -> tuple[Photo, ...]:
    return tuple(Photo.from_dict(item) for item in json.loads(text))


def _appeal(row: Row) -> Appeal:
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
        rating=row["rating"],
        first_answer_at=from_db(row["first_answer_at"]) if row["first_answer_at"] else None,
    )


class AppealRepository:
    def __init__(self, conn: Connection) -> None:
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

    async def record_answer(self, number: int, now: datetime) -> None:
        """Status «Отвечено»; the first answer's time is kept for the figures (SPEC §9), and
        an earlier rating is cleared: a new answer is rated anew."""
        await self._conn.execute(
            "UPDATE appeals SET status = 'answered', updated_at = ?, rating = NULL,"
            " first_answer_at = coalesce(first_answer_at, ?) WHERE id = ?",
            (to_db(now), to_db(now), number),
        )

    async def set_settlement(self, number: int, settlement: str, now: datetime) -> None:
        await self._conn.execute(
            "UPDATE appeals SET settlement = ?, updated_at = ? WHERE id = ?",
            (settlement, to_db(now), number),
        )

    async def set_rating(self, number: int, rating: str, now: datetime) -> None:
        await self._conn.execute(
            "UPDATE appeals SET rating = ?, updated_at = ? WHERE id = ?",
            (rating, to_db(now), number),
        )

    async def latest_unrated_answer(self, resident_id: int) -> Appeal | None:
        """The resident's newest answered appeal that has no rating yet."""
        async with self._conn.execute(
            f"SELECT {_COLUMNS} FROM appeals WHERE resident_id = ? AND status = 'answered'"
            " AND rating IS NULL ORDER BY updated_at DESC, id DESC LIMIT 1",
            (resident_id,),
        ) as cursor:
            row = await cursor.fetchone()
        return _appeal(row) if row else None

    async def listing(
        self,
        *,
        statuses: Sequence[Status],
        settlements: Sequence[str] | None,
        overdue_at: datetime | None = None,
        limit: int,
    ) -> tuple[list[Appeal], int]:
        """Appeals with the given statuses (in the given settlements; None = all), oldest
        first, at most `limit`, and how many matched in all. With `overdue_at`, only those
        whose deadline has passed by then."""
        where = [f"status IN ({', '.join('?' for _ in statuses)})"]
        params: list[object] = [str(s) for s in statuses]
        if settlements is not None:
            where.append(f"settlement IN ({', '.join('?' for _ in settlements)})")
            params.extend(settlements)
        if overdue_at is not None:
            where.append("deadline_at < ?")
            params.append(to_db(overdue_at))
        clause = " AND ".join(where)
        async with self._conn.execute(
            f"SELECT count(*) FROM appeals WHERE {clause}", params
        ) as cursor:
            row = await cursor.fetchone()
        total = int(row[0]) if row else 0
        async with self._conn.execute(
            f"SELECT {_COLUMNS} FROM appeals WHERE {clause} ORDER BY deadline_at, id LIMIT ?",
            [*params, limit],
        ) as cursor:
            rows = await cursor.fetchall()
        return [_appeal(r) for r in rows], total

    async def due_for_notice(
        self, kind: str, *, due_before: datetime, renew_hours: int, limit: int
    ) -> list[tuple[Appeal, datetime]]:
        """Appeals waiting for an answer whose current deadline is before `due_before` and
        that have had no `kind` notice about that deadline yet, earliest deadline first;
        each with that deadline."""
        if kind not in NOTICE_KINDS:
            raise ValueError(f"unknown notice kind {kind!r}")
        async with self._conn.execute(
            f"SELECT * FROM ({_WAITING}) AS w WHERE w.due_at < :before AND NOT EXISTS"
            " (SELECT 1 FROM deadline_notices n WHERE n.appeal_id = w.id AND n.kind = :kind"
            " AND n.due_at = w.due_at) ORDER BY w.due_at, w.id LIMIT :limit",
            {
                "renew": _renew(renew_hours),
                "before": to_db(due_before),
                "kind": kind,
                "limit": limit,
            },
        ) as cursor:
            rows = await cursor.fetchall()
        return [(_appeal(row), from_db(row["due_at"])) for row in rows]

    async def record_notice(
        self, number: int, kind: str, due_at: datetime, now: datetime, *, recipients: int
    ) -> bool:
        """Remember that a `kind` notice about this deadline was queued; False if one was
        already recorded (the caller then sends nothing)."""
        async with self._conn.execute(
            "INSERT INTO deadline_notices (appeal_id, kind, due_at, sent_at, recipients)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (number, kind, to_db(due_at), to_db(now), recipients),
        ) as cursor:
            return cursor.rowcount == 1

    async def overdue(
        self, now: datetime, *, renew_hours: int, limit: int
    ) -> tuple[list[tuple[Appeal, datetime]], int]:
        """Appeals waiting for an answer past their current deadline, the longest overdue
        first, at most `limit`, each with that deadline; and how many there are in all."""
        async with self._conn.execute(
            f"SELECT *, count(*) OVER () AS total FROM ({_WAITING}) AS w WHERE w.due_at < :now"
            " ORDER BY w.due_at, w.id LIMIT :limit",
            {"renew": _renew(renew_hours), "now": to_db(now), "limit": limit},
        ) as cursor:
            rows = list(await cursor.fetchall())
        total = int(rows[0]["total"]) if rows else 0
        return [(_appeal(row), from_db(row["due_at"])) for row in rows], total

    async def figures(self, since: datetime, until: datetime) -> Figures:
        """SPEC §9 for the appeals received in [since, until) (see storage/reports.py)."""
        return await ReportQueries(self._conn).figures(since, until)

    async def erase_contacts_of_resident(self, resident_id: int) -> int:
        """Anonymise a resident's appeals (name and phone); returns how many were touched."""
        async with self._conn.execute(
            "UPDATE appeals SET contact_name = NULL, contact_phone = NULL"
            " WHERE resident_id = ? AND (contact_name IS NOT NULL OR contact_phone IS NOT NULL)",
            (resident_id,),
        ) as cursor:
            return cursor.rowcount


class ThreadRepository:
    def __init__(self, conn: Connection) -> None:
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
