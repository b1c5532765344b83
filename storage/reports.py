"""Figures of SPEC §9 computed in SQL, and the whole register streamed for export.

Nothing here writes. The queries name the indexes of migration 0004 (`INDEXED BY`), so the
plan does not depend on statistics the bot never gathers: SQLite has no hash aggregation, and
left to itself it would range-scan the period and sort a million rows (seconds) where reading
an index that is already in group order takes a fraction of one. No per-appeal Python:

* every count of a period (by category, settlement, messenger, community, status and rating,
  answered, answered on time; appeals and comment items apart) comes from one GROUP BY over
  `appeals_figures`, read in group order with the period filtered on the way; the breakdowns
  are sums over its few hundred groups;
* distinct residents: one pass over `appeals_by_resident`, residents in order;
* percentiles of the time to first answer: `ORDER BY <expression> LIMIT 1 OFFSET k` on the
  expression index `appeals_by_answer_time`, which keeps answered appeals in that order;
* the months of the chart: a range of `appeals_by_created` each.

The first three read every appeal of the database once (about 0.1-0.3 s per million), not
only the period's, which keeps them independent of statistics; the benchmark in
`bench/report.py` measures them on a year of 1,000,000 appeals.

Definitions (also in the README):

* an appeal belongs to the period it was *received* in (`created_at`), whatever happened to
  it later;
* *answered on time*: its first official answer came no later than its registration
  deadline (`first_answer_at <= deadline_at`); the share is of all appeals received;
* *time to first answer*: `first_answer_at - created_at`, over the appeals answered so far;
  a percentile is the nearest-rank one: the p-th percentile of n values is the
  ceil(p·n)-th smallest, an actually observed time;
* ratings: «решён» / «не решён» as the resident last rated the answer; *unrated*: answered
  appeals the resident has not rated (an appeal never answered cannot be rated).
* comment items (SPEC §14) are counted apart from appeals: every figure above is of appeals
  only, and `Figures.comments` holds the comment items of the period (received, answered,
  answered on time, by community and by status). A community is named `platform:key`
  (`vk:` for the main VK community, `vk:123456` for another).

`connect_read_only` opens the file for the command line without write access, so a report
runs beside the bot (WAL lets readers and the one writer work at the same time).
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from storage.backend import Connection
from storage.sqlite import SqliteConnection

if TYPE_CHECKING:
    from storage.postgres import PostgresConnection
from storage.times import to_db

# The report's indexes come with migration 4; an older file is upgraded by starting the bot.
MIN_SCHEMA_VERSION = 8  # the communities and comment items the registers count
BUSY_TIMEOUT_MS = 5000
REGISTER_BATCH = 1000

SECONDS_PER_DAY = 86400


@dataclass(frozen=True)
class _Dialect:
    """The SQL of this module that differs between the backends, in one place."""

    figures: str  # the index of the period's counts
    by_resident: str
    answer_time: str
    by_created: str
    answer_days: str  # time to first answer, in days
    on_time: str  # how many of a group were answered by the deadline
    photos: str  # how many photos an appeal has


_DIALECTS = {
    # SQLite is told the indexes of migration 0004, and the time to first answer is written
    # exactly as in the index `appeals_by_answer_time`, or SQLite would not use it.
    "sqlite": _Dialect(
        figures=" INDEXED BY appeals_figures",
        by_resident=" INDEXED BY appeals_by_resident",
        answer_time=" INDEXED BY appeals_by_answer_time",
        by_created=" INDEXED BY appeals_by_created",
        answer_days="(julianday(first_answer_at) - julianday(created_at))",
        on_time="coalesce(sum(first_answer_at <= deadline_at), 0)",
        photos="json_array_length(a.photos)",
    ),
    # PostgreSQL plans by its statistics and aggregates by hashing.
    "postgresql": _Dialect(
        figures="",
        by_resident="",
        answer_time="",
        by_created="",
        answer_days="(extract(epoch FROM first_answer_at::timestamptz"
        " - created_at::timestamptz)::float8 / 86400)",
        on_time="count(*) FILTER (WHERE first_answer_at <= deadline_at)",
        photos="json_array_length(a.photos::json)",
    ),
}

Counts = tuple[tuple[str, int], ...]


class ReportError(Exception):
    """The database cannot be read for a report; the text says why and what to do."""


@dataclass(frozen=True)
class CommentFigures:
    """The comment items of a period (SPEC §14), counted apart from appeals."""

    received: int = 0
    answered: int = 0  # answered under the comment (or invited to write in private)
    on_time: int = 0
    by_community: Counts = ()
    by_status: Counts = ()
    by_settlement: Counts = ()


@dataclass(frozen=True)
class Figures:
    """SPEC §9 for the appeals received in [since, until); comment items apart."""

    since: datetime
    until: datetime
    received: int
    residents: int
    by_category: Counts  # largest first, then by code
    by_settlement: Counts
    by_platform: Counts
    by_status: Counts
    answered: int  # have a first answer
    on_time: int  # first answer no later than the deadline
    median_answer_seconds: int | None  # None when nothing was answered
    p90_answer_seconds: int | None
    resolved: int
    unresolved: int
    unrated: int  # answered, not rated
    by_community: Counts = ()  # appeals by the community they came in by: "vk:123"
    comments: CommentFigures = CommentFigures()

    @property
    def on_time_share(self) -> float | None:
        """On-time answers as a share of appeals received (0..1); None for an empty period."""
        return self.on_time / self.received if self.received else None


@dataclass(frozen=True)
class MonthFigures:
    """One month of the chart: appeals received by category, and how many on time."""

    since: datetime
    until: datetime
    by_category: Counts
    received: int
    on_time: int


@dataclass(frozen=True)
class RegisterRow:
    """One appeal as the register export shows it (codes; the caller adds titles)."""

    number: int
    created_at: datetime
    status: str
    category: str
    settlement: str
    platform: str
    text: str
    place: str | None
    latitude: float | None
    longitude: float | None
    photos: int
    contact_name: str | None
    contact_phone: str | None
    deadline_at: datetime
    first_answer_at: datetime | None
    rating: str | None
    answer: str | None  # the latest official answer
    kind: str = "appeal"  # or "comment": a comment item (SPEC §14)
    community: str = ""  # the community it came in by ('' for the platform's main one)


def read_only_uri(path: Path) -> str:
    """The URI that opens an existing file without write access (never creates one)."""
    if not path.is_file():
        raise ReportError(f"{path}: no database file here")
    return f"{path.resolve().as_uri()}?mode=ro"


async def connect_read_only(path: Path) -> SqliteConnection:
    """A connection that cannot write, to an existing database of a known schema."""
    uri = read_only_uri(path)
    try:
        conn = await SqliteConnection.connect(uri, uri=True)
    except Exception as error:  # sqlite3.Error, or an OS error opening it
        raise ReportError(f"{path}: cannot open the database ({error})") from error
    try:
        await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await conn.execute("PRAGMA query_only = 1")
        row = await conn.fetchone("PRAGMA user_version")
        version = int(row[0]) if row else 0
    except Exception as error:
        await conn.close()
        raise ReportError(f"{path}: not an appeals-bot database ({error})") from error
    if version < MIN_SCHEMA_VERSION:
        await conn.close()
        raise ReportError(
            f"{path}: database schema version {version} is older than reports need "
            f"({MIN_SCHEMA_VERSION}); start appeals-bot once to upgrade it"
        )
    return conn


async def connect_reader(source: Path | str) -> SqliteConnection | PostgresConnection:
    """A connection that cannot write: to a SQLite file, or to a PostgreSQL URL."""
    if isinstance(source, Path):
        return await connect_read_only(source)
    from storage.postgres import connect, schema_version

    try:
        conn = await connect(source, read_only=True)
    except Exception as error:  # psycopg.Error: the URL is not shown (it may hold a password)
        raise ReportError(f"cannot connect to PostgreSQL ({type(error).__name__})") from error
    if await schema_version(conn) < MIN_SCHEMA_VERSION:
        await conn.close()
        raise ReportError("the PostgreSQL database holds no appeals-bot schema")
    return conn


def nearest_rank_offsets(n: int, percents: Sequence[int]) -> list[int]:
    """0-based positions of the nearest-rank percentiles among n sorted values."""
    return [max(0, math.ceil(p * n / 100) - 1) for p in percents]


class ReportQueries:
    """Read-only queries over one connection (the bot's own, inside a transaction, for
    /stats; a read-only one for the command line)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._sql = _DIALECTS[conn.dialect]

    async def figures(self, since: datetime, until: datetime) -> Figures:
        period = (to_db(since), to_db(until))
        groups = await self._conn.fetchall(
            "SELECT kind, category, settlement, platform, community, status, rating, count(*),"
            f" count(first_answer_at), {self._sql.on_time}"
            f" FROM appeals{self._sql.figures} WHERE created_at >= ? AND created_at < ?"
            " GROUP BY kind, category, settlement, platform, community, status, rating",
            period,
        )
        by: dict[str, Counter[str]] = {
            key: Counter() for key in ("c", "s", "p", "st", "r", "cm", "k_cm", "k_st", "k_s")
        }
        received = answered = on_time = 0
        unrated = 0
        comments = [0, 0, 0]  # received, answered, on time
        for row in groups:
            kind, category, settlement, platform, community, status, rating = row[:7]
            n, with_answer, in_time = row[7], row[8], row[9]
            where = f"{platform}:{community}"
            if kind == "comment":
                comments[0] += n
                comments[1] += with_answer
                comments[2] += in_time
                by["k_cm"][where] += n
                by["k_st"][status] += n
                by["k_s"][settlement] += n
                continue
            received += n
            answered += with_answer
            on_time += in_time
            by["c"][category] += n
            by["s"][settlement] += n
            by["p"][platform] += n
            by["cm"][where] += n
            by["st"][status] += n
            if rating is not None:
                by["r"][rating] += n
            else:
                unrated += with_answer
        row = await self._conn.fetchone(
            f"SELECT count(*) FROM (SELECT resident_id FROM appeals{self._sql.by_resident}"
            " WHERE created_at >= ? AND created_at < ? AND kind = 'appeal'"
            " GROUP BY resident_id) AS r",
            period,
        )
        residents = int(row[0]) if row else 0
        median, p90 = await self._answer_percentiles(period, answered, (50, 90))
        return Figures(
            since=since,
            until=until,
            received=received,
            residents=residents,
            by_category=_largest_first(by["c"]),
            by_settlement=_largest_first(by["s"]),
            by_platform=_largest_first(by["p"]),
            by_status=_largest_first(by["st"]),
            answered=answered,
            on_time=on_time,
            median_answer_seconds=median,
            p90_answer_seconds=p90,
            resolved=by["r"]["resolved"],
            unresolved=by["r"]["unresolved"],
            unrated=unrated,
            by_community=_largest_first(by["cm"]),
            comments=CommentFigures(
                received=comments[0],
                answered=comments[1],
                on_time=comments[2],
                by_community=_largest_first(by["k_cm"]),
                by_status=_largest_first(by["k_st"]),
                by_settlement=_largest_first(by["k_s"]),
            ),
        )

    async def _answer_percentiles(
        self, period: tuple[str, str], answered: int, percents: Sequence[int]
    ) -> list[int | None]:
        if not answered:
            return [None for _ in percents]
        found: list[int | None] = []
        for offset in nearest_rank_offsets(answered, percents):
            row = await self._conn.fetchone(
                f"SELECT {self._sql.answer_days} FROM appeals{self._sql.answer_time}"
                " WHERE first_answer_at IS NOT NULL AND created_at >= ? AND created_at < ?"
                f" AND kind = 'appeal' ORDER BY {self._sql.answer_days} LIMIT 1 OFFSET ?",
                (*period, offset),
            )
            found.append(round(row[0] * SECONDS_PER_DAY) if row else None)
        return found

    async def months(self, bounds: Sequence[tuple[datetime, datetime]]) -> list[MonthFigures]:
        """Appeals by category and on time, for each [since, until) given (months, in the
        deployment's time zone, computed by the caller)."""
        result = []
        for since, until in bounds:
            rows = await self._conn.fetchall(
                f"SELECT category, count(*), {self._sql.on_time}"
                f" FROM appeals{self._sql.by_created}"
                " WHERE created_at >= ? AND created_at < ? AND kind = 'appeal'"
                " GROUP BY category",
                (to_db(since), to_db(until)),
            )
            counts: Counter[str] = Counter({row[0]: int(row[1]) for row in rows})
            result.append(
                MonthFigures(
                    since=since,
                    until=until,
                    by_category=_largest_first(counts),
                    received=sum(counts.values()),
                    on_time=sum(int(row[2]) for row in rows),
                )
            )
        return result

    async def register(
        self, batch: int = REGISTER_BATCH
    ) -> AsyncGenerator[list[RegisterRow], None]:
        """Every appeal in number order, `batch` rows at a time (never all in memory)."""
        rows_of = self._conn.stream(
            "SELECT a.id, a.created_at, a.status, a.category, a.settlement, a.platform, a.text,"
            f" a.place, a.latitude, a.longitude, {self._sql.photos}, a.contact_name,"
            " a.contact_phone, a.deadline_at, a.first_answer_at, a.rating,"
            " (SELECT e.text FROM appeal_events e WHERE e.appeal_id = a.id"
            "  AND e.kind = 'answer' ORDER BY e.id DESC LIMIT 1), a.kind, a.community"
            " FROM appeals a ORDER BY a.id",
            size=batch,
        )
        # Closed with the caller's: a consumer that stops early (a closed pipe) ends the
        # statement now, not when the garbage collector finds it after the database closed.
        async with contextlib.aclosing(rows_of) as batches:
            async for rows in batches:
                yield [
                    RegisterRow(
                        number=row[0],
                        created_at=_from_db(row[1]),
                        status=row[2],
                        category=row[3],
                        settlement=row[4],
                        platform=row[5],
                        text=row[6],
                        place=row[7],
                        latitude=row[8],
                        longitude=row[9],
                        photos=int(row[10] or 0),
                        contact_name=row[11],
                        contact_phone=row[12],
                        deadline_at=_from_db(row[13]),
                        first_answer_at=_from_db(row[14]) if row[14] else None,
                        rating=row[15],
                        answer=row[16],
                        kind=row[17],
                        community=row[18],
                    )
                    for row in rows
                ]


def _from_db(text: str) -> datetime:
    """storage.times.from_db, about ten times faster (the register parses three a row):
    the stored text is ISO 8601, which fromisoformat reads in C."""
    return datetime.fromisoformat(text)


def _largest_first(counts: Counter[str]) -> Counts:
    return tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
