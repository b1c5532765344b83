"""Benchmark of the yearly report (SPEC §9): `python -m bench report [--appeals 1000000]`.

Generates a database of N appeals spread over one year with realistic distributions
(categories, settlements and messengers weighted like Октябрьский район, more appeals in
spring and autumn and in the daytime, answer times log-normal around five hours with a tail
past the 24-hour deadline, ratings, a few rejections, the last days still open), then times
`appeals-bot report` in every format, in-process and as a subprocess, and prints a table.

The schema comes from the real migrations (`storage.db.Database.open`); the rows are written
with plain sqlite3 `executemany` in large batches inside one transaction, so a million
appeals take well under a minute. Not a test: nothing is asserted beyond the commands
succeeding.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import math
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from loguru import logger

from storage.db import Database

ROOT = Path(__file__).resolve().parent.parent
YEAR = 2025
TZ = ZoneInfo("Asia/Yekaterinburg")
BATCH = 50_000
US = 1_000_000  # microseconds in a second
HOUR_US = 3600 * US
DAY_US = 24 * HOUR_US

CATEGORIES = {
    "housing": 30,
    "improvement": 20,
    "roads": 17,
    "transport": 7,
    "health": 7,
    "education": 5,
    "social": 6,
    "other": 8,
}
# Roughly the settlements' populations; `district` for district-wide questions.
SETTLEMENTS = {
    "priobye": 70,
    "unyugan": 45,
    "talinka": 43,
    "oktyabrskoe": 30,
    "peregrebnoe": 27,
    "sergino": 21,
    "andra": 20,
    "karymkary": 15,
    "maly_atlym": 8,
    "sherkaly": 7,
    "kamennoe": 6,
    "district": 20,
}
PLATFORMS = {"vk": 55, "ok": 30, "tg": 15}
# Appeals per month: snowmelt and roads in spring, heating in autumn.
MONTHS = [7, 6, 8, 11, 11, 8, 7, 7, 9, 10, 9, 7]
HOURS = [1, 1, 1, 1, 1, 2, 4, 7, 9, 10, 10, 9, 8, 9, 9, 9, 9, 10, 11, 12, 11, 8, 5, 2]
STREETS = ("Центральная", "Ленина", "Школьная", "Набережная", "Лесная", "Советская", "Северная")
TEXTS = (
    "Не вывозят мусор с контейнерной площадки на ул. {street}, {house}, уже несколько дней.",
    "Яма на дороге по ул. {street} напротив дома {house}, машины объезжают по встречной.",
    "Не горит уличное освещение на ул. {street} от дома {house} до остановки.",
    "В подъезде дома {house} по ул. {street} протекает крыша после дождя.",
    "Нет горячей воды в доме {house} по ул. {street} третий день, управляющая не отвечает.",
    "Просим отсыпать дорогу на ул. {street}, после паводка не проехать к дому {house}.",
    "Автобус до райцентра не пришёл по расписанию, люди ждали на остановке у дома {house}.",
    "Во дворе дома {house} по ул. {street} сломаны качели на детской площадке.",
    "Бродячие собаки у школы на ул. {street}, дети боятся ходить мимо дома {house}.",
)
NAMES = ("Иван", "Мария", "Сергей", "Ольга", "Николай", "Татьяна", "Алексей", "Елена")
ANSWER = "Заявка передана в работу, срок устранения — до конца недели."


def _weighted(table: dict[str, int], k: int) -> list[str]:
    return random.choices(list(table), weights=list(table.values()), k=k)


class _Stamps:
    """Microseconds since the start of the year (UTC) → the database's timestamp text,
    fast: the date part of every day is computed once."""

    def __init__(self, start: datetime, days: int) -> None:
        midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
        self._shift = int((start - midnight).total_seconds()) * US
        self._days = [(midnight + timedelta(days=d)).strftime("%Y-%m-%d") for d in range(days)]

    def __call__(self, t: int) -> str:
        day, rest = divmod(t + self._shift, DAY_US)
        hour, rest = divmod(rest, HOUR_US)
        minute, rest = divmod(rest, 60 * US)
        second, micro = divmod(rest, US)
        return f"{self._days[day]}T{hour:02d}:{minute:02d}:{second:02d}.{micro:06d}Z"


def _creation_times(n: int, start: datetime) -> list[int]:
    """Sorted creation moments (µs since `start`), by month, weekday and hour of day."""
    local_start = start.astimezone(TZ)
    day_weights = []
    for day in range(365):
        moment = local_start + timedelta(days=day)
        weekend = 0.7 if moment.weekday() >= 5 else 1.0
        day_weights.append(MONTHS[moment.month - 1] / 30 * weekend)
    days = random.choices(range(365), weights=day_weights, k=n)
    hours = random.choices(range(24), weights=HOURS, k=n)
    # `start` is the local midnight of 1 January, and the zone keeps one offset all year:
    # a local hour of a day is the same number of hours after `start`.
    times = [
        d * DAY_US + h * HOUR_US + random.randrange(HOUR_US)
        for d, h in zip(days, hours, strict=True)
    ]
    times.sort()
    return times


def generate(path: Path, n: int, *, seed: int = 2025) -> float:
    """Create the database at `path` with `n` appeals over the year; returns seconds taken."""
    began = time.perf_counter()
    random.seed(seed)
    asyncio.run(_create_schema(path))
    start = datetime(YEAR, 1, 1, tzinfo=TZ).astimezone(UTC)
    stamp = _Stamps(start, 400)
    year_us = 365 * DAY_US
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -400000")
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("BEGIN")

    residents = max(1, n * 3 // 10)
    resident_platforms = _weighted(PLATFORMS, residents)
    conn.executemany(
        "INSERT INTO residents (id, platform, user_id, chat_id, created_at) VALUES (?, ?, ?, ?, ?)",
        (
            (i + 1, resident_platforms[i], str(100000 + i), str(100000 + i), stamp(0))
            for i in range(residents)
        ),
    )

    conn.executemany(
        "INSERT INTO staff (identity, role, settlement, source, added_at)"
        " VALUES (?, ?, ?, 'config', ?)",
        [("vk:1", "moderator", "", stamp(0))]
        + [(f"vk:{10 + i}", "admin", code, stamp(0)) for i, code in enumerate(SETTLEMENTS)],
    )
    created = _creation_times(n, start)
    categories = _weighted(CATEGORIES, n)
    settlements = _weighted(SETTLEMENTS, n)
    median_hours, sigma = 5.0, 1.1
    mu = math.log(median_hours)
    appeals: list[tuple[object, ...]] = []
    events: list[tuple[object, ...]] = []
    rnd = random.random
    for i in range(n):
        number = i + 1
        t = created[i]
        resident = int(residents * rnd() ** 1.7)
        platform = resident_platforms[resident]
        created_at = stamp(t)
        deadline_at = stamp(t + 24 * HOUR_US)
        first_answer = None
        rating = None
        r = rnd()
        if r < 0.025:
            status = "rejected"
            updated = t + HOUR_US
        else:
            delay = min(int(random.lognormvariate(mu, sigma) * HOUR_US), 30 * DAY_US)
            if t + delay >= year_us:
                status = "new" if rnd() < 0.5 else "in_progress"
                updated = t
            else:
                first_answer = stamp(t + delay)
                events.append((number, "answer", "vk:1", ANSWER, "[]", None, first_answer))
                updated = t + delay
                r = rnd()
                rated_at = min(t + delay + 3 * HOUR_US, year_us - 1)
                if r < 0.42:
                    rating, status = "resolved", "closed"
                elif r < 0.50:
                    rating = "unresolved"
                    status = "in_progress" if year_us - rated_at < 3 * DAY_US else "closed"
                else:
                    status = "answered" if r < 0.65 else "closed"
                if rating is not None:
                    events.append(
                        (number, "rating", "resident", rating, "[]", None, stamp(rated_at))
                    )
                    updated = rated_at
        house = 1 + int(rnd() * 60)
        text = TEXTS[int(rnd() * len(TEXTS))].format(street=STREETS[house % 7], house=house)
        name = NAMES[int(rnd() * len(NAMES))] if rnd() < 0.6 else None
        phone = f"+79{int(rnd() * 1e9):09d}" if rnd() < 0.4 else None
        appeals.append(
            (
                number,
                resident + 1,
                status,
                categories[i],
                settlements[i],
                text,
                f"ул. {STREETS[house % 7]}, {house}" if rnd() < 0.5 else None,
                name,
                phone,
                platform,
                str(100000 + resident),
                created_at,
                deadline_at,
                stamp(updated),
                rating,
                first_answer,
            )
        )
        if len(appeals) >= BATCH:
            _flush(conn, appeals, events)
    _flush(conn, appeals, events)
    conn.execute("COMMIT")
    # No ANALYZE: the bot never gathers statistics, and the report must not rely on them.
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return time.perf_counter() - began


Rows = list[tuple[object, ...]]


def _flush(conn: sqlite3.Connection, appeals: Rows, events: Rows) -> None:
    conn.executemany(
        "INSERT INTO appeals (id, resident_id, status, category, settlement, text, place,"
        " contact_name, contact_phone, platform, chat_id, created_at, deadline_at, updated_at,"
        " rating, first_answer_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        appeals,
    )
    conn.executemany(
        "INSERT INTO appeal_events (appeal_id, kind, author, text, photos, status, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        events,
    )
    appeals.clear()
    events.clear()


async def _create_schema(path: Path) -> None:
    database = await Database.open(path)
    await database.close()


# --- timing ----------------------------------------------------------------------------


def _in_process(args: Sequence[str]) -> tuple[float, int]:
    """Seconds `appeals-bot <args>` takes inside this process, and the bytes it printed."""
    from bot.cli import main

    out = io.StringIO()
    began = time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = main(list(args))
    elapsed = time.perf_counter() - began
    if code != 0:
        raise RuntimeError(f"appeals-bot {' '.join(args)} exited with {code}")
    return elapsed, len(out.getvalue().encode())


def _subprocess(args: Sequence[str]) -> float:
    """Wall-clock seconds of `python -m bot <args>` as a new process (start-up included)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPEALS_")}
    began = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=600,
        check=False,
    )
    elapsed = time.perf_counter() - began
    if result.returncode != 0:
        raise RuntimeError(result.stderr.decode(errors="replace"))
    return elapsed


def _deadline_passes(path: Path) -> tuple[float, float, int]:
    """Seconds of the scheduler's first pass at the end of the year (a backlog of open
    appeals: up to PASS_LIMIT of each kind), and of a pass once the backlog is worked off
    (the steady state: nothing due); and how many appeals were waiting for an answer."""
    from bot.cli import example_config_path
    from bot.config import load_config
    from bot.settings import handler_settings
    from handlers.figures.deadlines import deadline_pass

    settings = handler_settings(load_config(example_config_path()))
    now = datetime(YEAR + 1, 1, 1, tzinfo=TZ).astimezone(UTC)

    async def run() -> tuple[float, float]:
        database = await Database.open(path)
        try:
            began = time.perf_counter()
            result = await deadline_pass(database, settings, now)
            first = time.perf_counter() - began
            while result.reminders or result.escalations:
                result = await deadline_pass(database, settings, now)
            began = time.perf_counter()
            await deadline_pass(database, settings, now)
            return first, time.perf_counter() - began
        finally:
            await database.close()

    with sqlite3.connect(path) as conn:
        waiting = conn.execute(
            "SELECT count(*) FROM appeals WHERE status IN ('new', 'in_progress')"
        ).fetchone()[0]
    first, idle = asyncio.run(run())
    return first, idle, int(waiting)


def _print_table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [
            cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        ]
        print("  ".join(cells))


@contextlib.contextmanager
def _database(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="appeals-bench-") as folder:
        yield Path(folder) / "bench.db"


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench report", description=__doc__)
    parser.add_argument("--appeals", type=int, default=1_000_000, help="how many (1000000)")
    parser.add_argument("--db", type=Path, help="keep the database here (reused if it exists)")
    parser.add_argument("--runs", type=int, default=3, help="best of this many runs (3)")
    parser.add_argument("--export", action="store_true", help="also time the CSV export")
    parser.add_argument("--seed", type=int, default=2025)
    args = parser.parse_args(argv)
    logger.remove()  # the deadline passes would log every notice

    with _database(args.db) as path:
        if path.exists():
            print(f"database: {path} (reused)")
        else:
            print(f"generating {args.appeals:,} appeals over {YEAR} into {path} …", flush=True)
            seconds = generate(path, args.appeals, seed=args.seed)
            print(f"generated in {seconds:.1f} s")
        with sqlite3.connect(path) as conn:
            total = conn.execute("SELECT count(*) FROM appeals").fetchone()[0]
        size = path.stat().st_size / 2**20
        print(f"appeals: {total:,}   file: {size:.0f} MB   SQLite {sqlite3.sqlite_version}")
        print()
        period = ["--from", f"{YEAR}-01-01", "--to", f"{YEAR}-12-31"]
        header = ("command", "in-process", "subprocess", "output")
        rows: list[tuple[str, str, str, str]] = []
        # The first run reads the file from disk and imports the program: shown on its own,
        # then every figure below is the best of --runs with both warm.
        cold = _subprocess(["report", "--db", str(path), *period, "--format", "text"])
        rows.append(("first report after generating (cold)", "", f"{cold:.2f} s", ""))
        _in_process(["report", "--db", str(path), *period])
        for fmt in ("text", "json", "csv"):
            command = ["report", "--db", str(path), *period, "--format", fmt]
            inside = min(_in_process(command)[0] for _ in range(args.runs))
            outside = min(_subprocess(command) for _ in range(args.runs))
            printed = _in_process(command)[1]
            rows.append(
                (" ".join(command[3:]), f"{inside:.2f} s", f"{outside:.2f} s", f"{printed:,} B")
            )
        first, second, waiting = _deadline_passes(path)
        rows.append((f"deadline pass, first ({waiting:,} waiting)", f"{first:.3f} s", "", ""))
        rows.append(("deadline pass, next", f"{second:.3f} s", "", ""))
        if args.export:
            command = ["export", "--db", str(path), "--format", "csv", "--output", os.devnull]
            rows.append(("export --format csv", f"{_in_process(command)[0]:.1f} s", "", ""))
        _print_table([header, *rows])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
