"""Figures (SPEC §9): computed in SQL (storage/reports.py) on a generated data set and checked
against the same numbers computed here in plain Python over the same rows; the query plans
that keep a year of a large region fast; /stats as a moderator reads it."""

from __future__ import annotations

import math
import random
import sqlite3
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from handlers import texts
from handlers.figures.report import duration, month_bounds, number, percent, period_bounds, plural
from storage.db import Database
from storage.reports import Figures, ReportQueries, connect_read_only
from tests.conftest import Harness, Person
from tests.flows import file_appeal

TZ = ZoneInfo("Asia/Yekaterinburg")
FIRST_DAY, LAST_DAY = date(2026, 1, 10), date(2026, 2, 20)
CATEGORIES = ["housing", "roads", "improvement", "transport", "potholes"]  # one unknown code
SETTLEMENTS = ["sergino", "andra", "priobye", "district"]
PLATFORMS = ["vk", "ok", "tg"]


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Row:
    number: int
    resident: int
    category: str
    settlement: str
    platform: str
    status: str
    created: datetime
    deadline: datetime
    first_answer: datetime | None
    rating: str | None


def generate(count: int = 3000, seed: int = 9) -> list[Row]:
    """Appeals spread over Jan-Feb 2026 (whole seconds), with the edge cases a period and a
    deadline have: exactly at the boundaries, answered exactly at the deadline."""
    rnd = random.Random(seed)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    moments = [base + timedelta(seconds=rnd.randrange(65 * 86400)) for _ in range(count)]
    start = datetime(2026, 1, 10, tzinfo=TZ)
    end = datetime(2026, 2, 21, tzinfo=TZ)
    moments += [start, start - timedelta(seconds=1), end, end - timedelta(seconds=1)]
    rows = []
    for seq, created in enumerate(sorted(moments), 1):
        deadline = created + timedelta(hours=24)
        first_answer = rating = None
        roll = rnd.random()
        if roll < 0.1:
            status = rnd.choice(["new", "in_progress"])
        elif roll < 0.13:
            status = "rejected"
        else:
            first_answer = created + timedelta(seconds=int(rnd.lognormvariate(9.5, 1.2)))
            if seq % 97 == 0:
                first_answer = deadline  # exactly at the deadline: on time
            elif seq % 89 == 0:
                first_answer = deadline + timedelta(seconds=1)
            rating = rnd.choice([None, None, "resolved", "unresolved"])
            status = {"resolved": "closed", "unresolved": "in_progress"}.get(
                rating or "", rnd.choice(["answered", "closed"])
            )
        rows.append(
            Row(
                number=seq,
                resident=1 + int(rnd.random() ** 2 * 900),
                category=rnd.choices(CATEGORIES, weights=[5, 4, 3, 2, 1])[0],
                settlement=rnd.choice(SETTLEMENTS),
                platform=rnd.choices(PLATFORMS, weights=[6, 3, 1])[0],
                status=status,
                created=created,
                deadline=deadline,
                first_answer=first_answer,
                rating=rating,
            )
        )
    return rows


def store(path: Path, rows: list[Row]) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(
            "INSERT INTO residents (id, platform, user_id, chat_id, created_at)"
            " VALUES (?, 'vk', ?, ?, '2026-01-01T00:00:00.000000Z')",
            [(i, str(i), str(i)) for i in range(1, 902)],
        )
        conn.executemany(
            "INSERT INTO appeals (id, resident_id, status, category, settlement, text, platform,"
            " chat_id, created_at, deadline_at, updated_at, rating, first_answer_at)"
            " VALUES (?, ?, ?, ?, ?, 'текст', ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    r.number,
                    r.resident,
                    r.status,
                    r.category,
                    r.settlement,
                    r.platform,
                    str(r.resident),
                    stamp(r.created),
                    stamp(r.deadline),
                    stamp(r.created),
                    r.rating,
                    stamp(r.first_answer) if r.first_answer else None,
                )
                for r in rows
            ],
        )
    conn.close()


@pytest.fixture
async def dataset(tmp_path: Path) -> tuple[Path, list[Row]]:
    path = tmp_path / "figures.db"
    database = await Database.open(path)  # the real migrations
    await database.close()
    rows = generate()
    store(path, rows)
    return path, rows


def expected(rows: list[Row], first: date, last: date) -> dict[str, object]:
    """The figures, computed independently: plain Python over the rows."""
    since = datetime(first.year, first.month, first.day, tzinfo=TZ)
    until = datetime(last.year, last.month, last.day, tzinfo=TZ) + timedelta(days=1)
    inside = [r for r in rows if since <= r.created < until]
    answered = [r for r in inside if r.first_answer is not None]
    times = sorted((r.first_answer - r.created).total_seconds() for r in answered if r.first_answer)

    def rank(p: int) -> int | None:
        return round(times[math.ceil(p * len(times) / 100) - 1]) if times else None

    def ordered(counter: Counter[str]) -> tuple[tuple[str, int], ...]:
        return tuple(sorted(counter.items(), key=lambda item: (-item[1], item[0])))

    return {
        "received": len(inside),
        "residents": len({r.resident for r in inside}),
        "by_category": ordered(Counter(r.category for r in inside)),
        "by_settlement": ordered(Counter(r.settlement for r in inside)),
        "by_platform": ordered(Counter(r.platform for r in inside)),
        "by_status": ordered(Counter(r.status for r in inside)),
        "answered": len(answered),
        "on_time": sum(1 for r in answered if r.first_answer and r.first_answer <= r.deadline),
        "median_answer_seconds": rank(50),
        "p90_answer_seconds": rank(90),
        "resolved": sum(1 for r in inside if r.rating == "resolved"),
        "unresolved": sum(1 for r in inside if r.rating == "unresolved"),
        "unrated": sum(1 for r in answered if r.rating is None),
    }


def as_dict(figures: Figures) -> dict[str, object]:
    return {key: getattr(figures, key) for key in expected([], FIRST_DAY, LAST_DAY)}


@pytest.mark.parametrize(
    ("first", "last"),
    [
        (FIRST_DAY, LAST_DAY),
        (date(2026, 1, 1), date(2026, 12, 31)),
        (date(2026, 2, 1), date(2026, 2, 1)),
        (date(2025, 6, 1), date(2025, 6, 30)),  # nothing
    ],
)
async def test_figures_match_an_independent_count(
    dataset: tuple[Path, list[Row]], first: date, last: date
) -> None:
    path, rows = dataset
    since, until = period_bounds(first, last, TZ)
    conn = await connect_read_only(path)  # as the command line reads it
    try:
        figures = await ReportQueries(conn).figures(since, until)
    finally:
        await conn.close()
    assert as_dict(figures) == expected(rows, first, last)
    database = await Database.open(path)  # as /stats reads it, inside a transaction
    try:
        async with database.transaction() as tx:
            assert as_dict(await tx.appeals.figures(since, until)) == as_dict(figures)
    finally:
        await database.close()


async def test_the_data_set_has_its_edge_cases(dataset: tuple[Path, list[Row]]) -> None:
    """The comparison above means something only if the rows hold what it is about."""
    _, rows = dataset
    figures = expected(rows, FIRST_DAY, LAST_DAY)
    assert 0 < figures["on_time"] < figures["answered"] < figures["received"]  # type: ignore[operator]
    assert any(r.first_answer == r.deadline for r in rows)
    assert ("potholes", 1) not in figures["by_category"]  # type: ignore[operator]
    assert {r.status for r in rows} == {"new", "in_progress", "answered", "closed", "rejected"}


async def test_months_of_the_chart(dataset: tuple[Path, list[Row]]) -> None:
    path, rows = dataset
    months = month_bounds(FIRST_DAY, LAST_DAY, TZ)
    assert [first for first, _, _ in months] == [date(2026, 1, 1), date(2026, 2, 1)]
    conn = await connect_read_only(path)
    try:
        found = await ReportQueries(conn).months([(s, u) for _, s, u in months])
    finally:
        await conn.close()
    january = expected(rows, FIRST_DAY, date(2026, 1, 31))
    february = expected(rows, date(2026, 2, 1), LAST_DAY)
    assert [m.received for m in found] == [january["received"], february["received"]]
    assert [m.on_time for m in found] == [january["on_time"], february["on_time"]]
    assert found[0].by_category == january["by_category"]


def test_percentiles_are_nearest_rank() -> None:
    rows = [
        Row(
            i,
            i,
            "roads",
            "sergino",
            "vk",
            "answered",
            created,
            created + timedelta(hours=24),
            created + timedelta(hours=i),
            None,
        )
        for i, created in enumerate([datetime(2026, 1, 15, tzinfo=UTC)] * 4, 1)
    ]
    figures = expected(rows, FIRST_DAY, LAST_DAY)
    assert (figures["median_answer_seconds"], figures["p90_answer_seconds"]) == (7200, 14400)


async def test_the_report_reads_indexes_in_order(dataset: tuple[Path, list[Row]]) -> None:
    """A year of 1,000,000 appeals reports in about a second only if no query sorts the
    period's rows (SQLite has no hash aggregation): every SELECT of the report reads a
    covering index of migration 0004 in the order it needs."""
    path, _ = dataset
    statements: list[str] = []
    conn = await connect_read_only(path)
    try:
        await conn.aio.set_trace_callback(statements.append)
        since, until = period_bounds(FIRST_DAY, LAST_DAY, TZ)
        await ReportQueries(conn).figures(since, until)
    finally:
        await conn.close()
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 4  # counts, residents, median, 90th percentile
    raw = sqlite3.connect(path)
    try:
        plans = [
            " | ".join(row[3] for row in raw.execute(f"EXPLAIN QUERY PLAN {sql}"))
            for sql in selects
        ]
    finally:
        raw.close()
    for plan in plans:
        assert "TEMP B-TREE" not in plan, plan
        assert "COVERING INDEX" in plan or "appeals_by_answer_time" in plan, plan
    assert "appeals_figures" in plans[0]
    assert "appeals_by_resident" in plans[1]
    assert all("appeals_by_answer_time" in plan for plan in plans[2:])


def test_numbers_in_words() -> None:
    assert [plural(n, texts.APPEAL_FORMS) for n in (1, 2, 5, 11, 12, 21, 22, 25, 111, 101)] == [
        "обращение",
        "обращения",
        "обращений",
        "обращений",
        "обращений",
        "обращение",
        "обращения",
        "обращений",
        "обращений",
        "обращение",
    ]
    assert number(1_000_000) == "1\u00a0000\u00a0000"
    assert percent(0.898) == "89,8\u00a0%"
    assert percent(None) == "—"
    assert [duration(s) for s in (None, 0, 30, 60, 3600, 18030, 86400, 93600, 90061)] == [
        "—",
        "меньше минуты",
        "1 мин",
        "1 мин",
        "1 ч",
        "5 ч 1 мин",
        "1 дн.",
        "1 дн. 2 ч",
        "1 дн. 1 ч",
    ]


async def test_stats_for_moderators(office: Harness) -> None:
    resident: Person = office.person("1001", platform="vk")
    admin = office.person("500", platform="tg")
    moderator = office.person("900", platform="tg")
    answered = await file_appeal(resident)
    office.clock.advance(minutes=1)  # under the flood limit
    await file_appeal(resident, "Не вывозят мусор третью неделю подряд", settlement="Андра")
    office.clock.advance(hours=2, minutes=-1)
    await admin.say(f"/reply {answered} Засыпали.")
    await resident.press("Вопрос решён")
    await moderator.say("/stats 01.03.2026 2026-03-31")
    lines = moderator.text.splitlines()
    assert lines[:4] == [
        "Обращения с 01.03.2026 по 31.03.2026: 2",
        "Жителей: 1 · отвечено: 1 · в срок: 1 (50,0\u00a0%)",
        "Время до первого ответа: медиана 2 ч, 90 % — до 2 ч",
        "Оценки: решён 1 · не решён 0 · без оценки 0",
    ]
    for section in ("По статусам:", "По темам:", "По поселениям:", "По мессенджерам:"):
        assert section in lines
    assert "  Закрыто: 1" in lines and "  Новое: 1" in lines
    assert "  Сергино: 1" in lines and "  Андра: 1" in lines
    assert "  ВКонтакте: 2" in lines
    await moderator.say("/stats 01.02.2026 28.02.2026")
    assert moderator.text == "Обращения с 01.02.2026 по 28.02.2026: 0"
