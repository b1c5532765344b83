"""Appeals and their threads (every message and status change, in order).

Listings for staff (`listing`, `overdue`, `count`) and the deadline scheduler
(`due_for_notice`) read appeals in the order of their current deadline, a page at a time:
each is one or more index ranges (one per status, and per settlement for an administrator,
migration 0006) of at most a page of rows, merged here. The next page starts after the last
appeal shown (keyset paging), so page 1000 costs what page 1 does, and nothing counts or
sorts every row: at a million appeals a statement on the event loop stays well under a
millisecond. Counts stop at a cap (`count(up_to=…)`).
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from storage.backend import Connection, Row
from storage.models import OPEN_STATUSES, Appeal, Kind, Photo, Status, ThreadEntry
from storage.reports import Figures, ReportQueries
from storage.times import from_db, to_db

_COLUMNS = (
    "id, resident_id, status, category, settlement, text, place, latitude, longitude, photos,"
    " contact_name, contact_phone, platform, chat_id, created_at, deadline_at, rating,"
    " first_answer_at, kind, community"
)

# The deadline an appeal must now be answered by (SPEC §8), the one definition every list,
# /overdue and the reminders and escalations use: the registration deadline `deadline_at`,
# or, once the resident reopened the appeal with «Вопрос не решён», `renewed_deadline_at`,
# `answer_within_hours` after that rating (set by `set_rating`, cleared by the next answer).
# `deadline_at` itself never changes: the figures measure the first answer against it.
# Written exactly so in every query, for SQLite to use the indexes of migration 0006.
_DUE = "coalesce(renewed_deadline_at, deadline_at)"
# Appeals still waiting for an answer («Новое», «В работе»).
WAITING_STATUSES = (Status.NEW, Status.IN_PROGRESS)
# Where the dialects differ (the one place in this repository): SQLite is told the index a
# resident's own queries read (it keeps no statistics); PostgreSQL plans by its statistics.
_BY_RESIDENT = {"sqlite": " INDEXED BY appeals_by_resident", "postgresql": ""}
NOTICE_KINDS = frozenset({"reminder", "escalation"})


@dataclass(frozen=True)
class Page:
    """One page of a listing: appeals, each with its current deadline, and whether more
    follow after the last of them."""

    rows: list[tuple[Appeal, datetime]]
    more: bool


@dataclass(frozen=True)
class _Key:
    due: str
    id: int


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
        kind=Kind(row["kind"]),
        community=row["community"],
    )


def _lane_where(
    status: Status, settlement: str | None, due_before: datetime | None
) -> tuple[str, dict[str, object]]:
    """The equality prefix of one index range (and the deadline's upper bound, if any)."""
    where = "status = :status"
    params: dict[str, object] = {"status": str(status)}
    if settlement is not None:
        where += " AND settlement = :settlement"
        params["settlement"] = settlement
    if due_before is not None:
        where += f" AND {_DUE} < :before"
        params["before"] = to_db(due_before)
    return where, params


def _filters(
    category: str | None, platform: str | None, text: str | None
) -> tuple[str, dict[str, object]] | None:
    """The conditions of a dashboard queue's filters, for `_lane_keys(extra=…)`."""
    where: list[str] = []
    params: dict[str, object] = {}
    if category is not None:
        where.append("category = :category")
        params["category"] = category
    if platform is not None:
        where.append("platform = :platform")
        params["platform"] = platform
    if text:
        # As typed, in lower case, capitalised and in upper case: LIKE folds no Cyrillic
        # (SQLite folds ASCII only, PostgreSQL nothing), and a moderator types «яма» for
        # «Яма на дороге». Each is a plain LIKE: no function runs per row.
        variants = dict.fromkeys((text, text.lower(), text.capitalize(), text.upper()))
        alternatives = []
        for i, variant in enumerate(variants):
            escaped = variant.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            alternatives.append(f"text LIKE :text{i} ESCAPE '\\'")
            params[f"text{i}"] = f"%{escaped}%"
        where.append(f"({' OR '.join(alternatives)})")
    return (" AND ".join(where), params) if where else None


class AppealRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._by_resident = _BY_RESIDENT[conn.dialect]

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
        kind: Kind = Kind.APPEAL,
        community: str = "",
    ) -> Appeal:
        """Register an appeal (or a comment item, `kind`); its number is the next in the
        deployment's sequence."""
        row = await self._conn.fetchone(
            "INSERT INTO appeals (resident_id, category, settlement, text, place, latitude,"
            " longitude, photos, contact_name, contact_phone, platform, chat_id, created_at,"
            " deadline_at, updated_at, kind, community)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
                str(kind),
                community,
            ),
        )
        assert row is not None
        return _appeal(row)

    async def last_number(self) -> int:
        """The number of the latest appeal (0 before the first): how many were registered,
        read from the end of the primary key (for /healthz and /metrics)."""
        row = await self._conn.fetchone("SELECT max(id) FROM appeals")
        return int(row[0]) if row and row[0] is not None else 0

    async def get(self, number: int) -> Appeal | None:
        row = await self._conn.fetchone(f"SELECT {_COLUMNS} FROM appeals WHERE id = ?", (number,))
        return _appeal(row) if row else None

    async def of_resident(
        self,
        resident_id: int,
        *,
        limit: int,
        open_only: bool = False,
        before: int | None = None,
    ) -> list[Appeal]:
        """The resident's appeals, newest first; with `before`, those older than that
        number (the next page of «Мои обращения»). Comment items are not a resident's
        appeals (SPEC §14: a comment never becomes one without its author writing in)."""
        where = "resident_id = ? AND kind = 'appeal'"
        params: list[object] = [resident_id]
        if open_only:
            where += f" AND status IN ({', '.join('?' for _ in OPEN_STATUSES)})"
            params.extend(str(s) for s in OPEN_STATUSES)
        if before is not None:
            where += " AND id < ?"
            params.append(before)
        params.append(limit)
        rows = await self._conn.fetchall(
            f"SELECT {_COLUMNS} FROM appeals{self._by_resident} WHERE {where}"
            " ORDER BY id DESC LIMIT ?",
            params,
        )
        return [_appeal(row) for row in rows]

    async def count_of_resident(self, resident_id: int, *, newer_than: int | None = None) -> int:
        """How many appeals the resident has (with `newer_than`: with a greater number)."""
        sql = (
            f"SELECT count(*) FROM appeals{self._by_resident}"
            " WHERE resident_id = ? AND kind = 'appeal'"
        )
        params: list[object] = [resident_id]
        if newer_than is not None:
            sql += " AND id > ?"
            params.append(newer_than)
        row = await self._conn.fetchone(sql, params)
        return int(row[0]) if row else 0

    async def set_status(self, number: int, status: Status, now: datetime) -> None:
        await self._conn.execute(
            "UPDATE appeals SET status = ?, updated_at = ? WHERE id = ?",
            (str(status), to_db(now), number),
        )

    async def record_answer(self, number: int, now: datetime) -> None:
        """Status «Отвечено»; the first answer's time is kept for the figures (SPEC §9), and
        an earlier rating is cleared, with the deadline it renewed: a new answer is rated
        anew."""
        await self._conn.execute(
            "UPDATE appeals SET status = 'answered', updated_at = ?, rating = NULL,"
            " renewed_deadline_at = NULL, first_answer_at = coalesce(first_answer_at, ?)"
            " WHERE id = ?",
            (to_db(now), to_db(now), number),
        )

    async def set_text(self, number: int, text: str, now: datetime) -> None:
        """A comment item's text follows its comment when the author edits it."""
        await self._conn.execute(
            "UPDATE appeals SET text = ?, updated_at = ? WHERE id = ?",
            (text, to_db(now), number),
        )

    async def set_settlement(self, number: int, settlement: str, now: datetime) -> None:
        await self._conn.execute(
            "UPDATE appeals SET settlement = ?, updated_at = ? WHERE id = ?",
            (settlement, to_db(now), number),
        )

    async def set_rating(
        self, number: int, rating: str, now: datetime, *, renewed_deadline: datetime | None = None
    ) -> None:
        """The resident's rating of the answer; «не решён» comes with the new deadline the
        appeal must now be answered by (`renewed_deadline`), «решён» with none."""
        await self._conn.execute(
            "UPDATE appeals SET rating = ?, updated_at = ?, renewed_deadline_at = ? WHERE id = ?",
            (rating, to_db(now), to_db(renewed_deadline) if renewed_deadline else None, number),
        )

    async def latest_unrated_answer(self, resident_id: int) -> Appeal | None:
        """The resident's newest answered appeal that has no rating yet. (A resident's own
        queries name their index: without statistics SQLite would take a status index,
        and read every answered appeal of the district.)"""
        row = await self._conn.fetchone(
            f"SELECT {_COLUMNS} FROM appeals{self._by_resident}"
            " WHERE resident_id = ? AND kind = 'appeal' AND status = 'answered'"
            " AND rating IS NULL"
            " ORDER BY updated_at DESC, id DESC LIMIT 1",
            (resident_id,),
        )
        return _appeal(row) if row else None

    async def listing(
        self,
        *,
        statuses: Sequence[Status],
        settlements: Sequence[str] | None,
        due_before: datetime | None = None,
        newest_first: bool = False,
        after: int | None = None,
        limit: int,
        category: str | None = None,
        platform: str | None = None,
        text: str | None = None,
    ) -> Page:
        """A page of the appeals with the given statuses (in the given settlements; None =
        all), ordered by their current deadline and number: the earliest first, or with
        `newest_first` the latest first. With `due_before`, only those whose current
        deadline is before it; with `after`, the page that follows appeal №`after` in
        that order (wherever that appeal is now). `category` and `platform` narrow the
        ranges (indexes of migration 0007); `text`, a piece of the appeal's text, is
        checked on the rows of the ranges as they are read (no index)."""
        extra = _filters(category, platform, text)
        cursor = await self._key_of(after) if after is not None else None
        if after is not None and cursor is None:
            return Page([], False)
        lanes = [
            await self._lane_keys(
                status=status,
                settlement=settlement,
                due_before=due_before,
                cursor=cursor,
                newest_first=newest_first,
                limit=limit + 1,
                extra=extra,
            )
            for status in dict.fromkeys(statuses)
            for settlement in (dict.fromkeys(settlements) if settlements is not None else [None])
        ]
        return await self._page(lanes, newest_first=newest_first, limit=limit)

    async def count(
        self,
        *,
        statuses: Sequence[Status],
        settlements: Sequence[str] | None,
        due_before: datetime | None = None,
        up_to: int,
    ) -> int:
        """How many appeals `listing` would go through in all, counted up to `up_to` (a
        return value of `up_to` means «that many or more»): at most `up_to` index entries
        are read."""
        total = 0
        for status in dict.fromkeys(statuses):
            for settlement in dict.fromkeys(settlements) if settlements is not None else [None]:
                if total >= up_to:
                    return up_to
                where, params = _lane_where(status, settlement, due_before)
                params["cap"] = up_to - total
                row = await self._conn.fetchone(
                    f"SELECT count(*) FROM (SELECT 1 FROM appeals WHERE {where}"
                    " LIMIT :cap) AS capped",
                    params,
                )
                total += int(row[0]) if row else 0
        return min(total, up_to)

    async def due_for_notice(
        self, kind: str, *, due_before: datetime, limit: int
    ) -> list[tuple[Appeal, datetime]]:
        """Appeals waiting for an answer whose current deadline is before `due_before` and
        that have had no `kind` notice about that deadline yet, earliest deadline first;
        each with that deadline."""
        if kind not in NOTICE_KINDS:
            raise ValueError(f"unknown notice kind {kind!r}")
        unnoticed = (
            "NOT EXISTS (SELECT 1 FROM deadline_notices n WHERE n.appeal_id = appeals.id"
            f" AND n.kind = :kind AND n.due_at = {_DUE})"
        )
        lanes = [
            await self._lane_keys(
                status=status,
                settlement=None,
                due_before=due_before,
                cursor=None,
                newest_first=False,
                limit=limit,
                extra=(unnoticed, {"kind": kind}),
            )
            for status in WAITING_STATUSES
        ]
        return (await self._page(lanes, newest_first=False, limit=limit)).rows

    async def overdue(self, now: datetime, *, limit: int, after: int | None = None) -> Page:
        """Appeals waiting for an answer past their current deadline, the longest overdue
        first, a page at a time (see `listing`)."""
        return await self.listing(
            statuses=WAITING_STATUSES, settlements=None, due_before=now, after=after, limit=limit
        )

    async def _key_of(self, number: int) -> _Key | None:
        row = await self._conn.fetchone(f"SELECT {_DUE} FROM appeals WHERE id = ?", (number,))
        return _Key(row[0], number) if row else None

    async def _lane_keys(
        self,
        *,
        status: Status,
        settlement: str | None,
        due_before: datetime | None,
        cursor: _Key | None,
        newest_first: bool,
        limit: int,
        extra: tuple[str, Mapping[str, object]] | None = None,
    ) -> list[_Key]:
        """One index range: the first `limit` appeals of one status (and settlement) in
        deadline order, past the cursor; their keys only."""
        where, params = _lane_where(status, settlement, due_before)
        if cursor is not None:
            # The plain range on the indexed expression is what positions the index scan;
            # the row-value comparison then steps over the appeals of the same deadline.
            sign, bound = ("<", "<=") if newest_first else (">", ">=")
            where += f" AND {_DUE} {bound} :after_due AND ({_DUE}, id) {sign} (:after_due, :after)"
            params.update(after_due=cursor.due, after=cursor.id)
        if extra is not None:
            where += f" AND {extra[0]}"
            params.update(extra[1])
        order = "DESC" if newest_first else "ASC"
        params["limit"] = limit
        rows = await self._conn.fetchall(
            f"SELECT id, {_DUE} AS due FROM appeals WHERE {where}"
            f" ORDER BY {_DUE} {order}, id {order} LIMIT :limit",
            params,
        )
        return [_Key(row["due"], row["id"]) for row in rows]

    async def _page(self, lanes: Iterable[list[_Key]], *, newest_first: bool, limit: int) -> Page:
        """Merge sorted lanes, keep `limit` keys, and read those appeals in one statement."""
        merged = heapq.merge(*lanes, key=lambda key: (key.due, key.id), reverse=newest_first)
        keys = [key for _, key in zip(range(limit + 1), merged, strict=False)]
        more = len(keys) > limit
        keys = keys[:limit]
        if not keys:
            return Page([], more)
        found = {
            row["id"]: row
            for row in await self._conn.fetchall(
                f"SELECT {_COLUMNS}, {_DUE} AS due FROM appeals"
                f" WHERE id IN ({', '.join('?' for _ in keys)})",
                [key.id for key in keys],
            )
        }
        rows = [(_appeal(found[key.id]), from_db(found[key.id]["due"])) for key in keys]
        return Page(rows, more)

    async def record_notice(
        self, number: int, kind: str, due_at: datetime, now: datetime, *, recipients: int
    ) -> bool:
        """Remember that a `kind` notice about this deadline was queued; False if one was
        already recorded (the caller then sends nothing)."""
        return (
            await self._conn.execute(
                "INSERT INTO deadline_notices (appeal_id, kind, due_at, sent_at, recipients)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (number, kind, to_db(due_at), to_db(now), recipients),
            )
        ) == 1

    async def figures(self, since: datetime, until: datetime) -> Figures:
        """SPEC §9 for the appeals received in [since, until) (see storage/reports.py)."""
        return await ReportQueries(self._conn).figures(since, until)

    async def erase_contacts_of_resident(self, resident_id: int) -> int:
        """Anonymise a resident's appeals (name and phone) and comment items (the public
        name and the profile link); returns how many were touched."""
        await self._conn.execute(
            "UPDATE comments SET author_link = NULL WHERE author_link IS NOT NULL AND appeal_id"
            " IN (SELECT id FROM appeals WHERE resident_id = ? AND kind = 'comment')",
            (resident_id,),
        )
        return await self._conn.execute(
            "UPDATE appeals SET contact_name = NULL, contact_phone = NULL"
            " WHERE resident_id = ? AND (contact_name IS NOT NULL OR contact_phone IS NOT NULL)",
            (resident_id,),
        )


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
        rows = await self._conn.fetchall(sql + " ORDER BY id", params)
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
