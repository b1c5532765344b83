"""Benchmark of the staff listings (issue 14, item 17): `python -m bench listings`.

Builds a database of N appeals (1,000,000 by default) over one year with the generator of
`bench/report.py`, turns `--backlog` of the closed ones back into «Новое» / «В работе» (a
district that stopped answering: the lists of appeals waiting for an answer are then as
long as they get), and adds an administrator of every settlement. Then it sends every
variant of `/list`, `/overdue`, «Ещё» and «Мои обращения» through the real `Engine` on the
real database, as a moderator, as the administrator of the largest settlement and as the
administrator of all of them, and measures the longest time the event loop was held while
the command was handled (every statement runs in aiosqlite's thread, storage/sqlite.py: what
is left on the loop is the handler's own work).

How the stall is measured: a watcher task wakes on every turn of the loop and notes the
longest gap between two of its turns while the command is handled, in CPU time of the
loop's thread (`time.thread_time`: what the handler itself took, the figure held against
the 20 ms target) and in wall-clock time (which also counts the process waiting for a core
on a busy machine, and disk reads). Each figure is the worst (and the median) of `--runs`
runs, after one warm-up run.

Then the mixed run (`--mixed` seconds, 0 to skip): `--residents` walk the dialogue while a
moderator sends `/stats` for the whole year and `/list all` one after another; it prints the
p99 of the residents' steps (the target: 50 ms) and the longest loop stall (20 ms).

    python -m bench listings [--appeals 1000000] [--backlog 100000] [--db FILE] [--runs 5]
                             [--mixed 30] [--residents 20]

`--db FILE` keeps the database (reused if it exists). Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import math
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from loguru import logger

from bench.report import SETTLEMENTS, TZ, YEAR, generate
from handlers.engine import Engine
from handlers.messages import Incoming
from handlers.settings import HandlerSettings
from storage.db import Database
from storage.models import Status

TARGET_MS = 20.0
MIXED_P99_MS = 50.0  # residents' steps while a moderator reads (issue 15)
MIXED_THINK = 0.2  # seconds between a resident's steps in the mixed run
RUN = uuid.uuid4().hex[:12]
MODERATOR = "1"  # vk:1 in bench/report.py
EVERYWHERE = "99"  # vk:99: administrator of every settlement, added here
LARGEST = max(SETTLEMENTS, key=lambda code: SETTLEMENTS[code])


@dataclass(frozen=True)
class Variant:
    who: str  # vk user id
    title: str
    text: str = ""
    payload: str | None = None
    resident: bool = False


def _variants(deep: int, busiest_resident: str) -> list[Variant]:
    """What is sent. `deep`: an appeal number half-way down the register."""
    largest = str(10 + list(SETTLEMENTS).index(LARGEST))  # vk:10… in bench/report.py
    # The floor: an update that reads no appeal at all (event, staff, outbox, audit).
    variants = [Variant(MODERATOR, "moderator /help (the floor: no listing)", "/help")]
    for key in ("", "new", "work", "overdue", "answered", "all"):
        text = f"/list {key}".strip()
        variants.append(Variant(MODERATOR, f"moderator {text}", text))
    variants += [
        Variant(MODERATOR, "moderator /overdue", "/overdue"),
        Variant(MODERATOR, "moderator «Ещё» after /list all", payload="page:list:all:{last}"),
        Variant(MODERATOR, "moderator «Ещё» typed after /list", "Ещё"),
        Variant(MODERATOR, f"moderator /list all после {deep}", f"/list all после {deep}"),
        Variant(MODERATOR, f"moderator /overdue после {deep}", f"/overdue после {deep}"),
    ]
    for key in ("", "overdue", "answered", "all"):
        text = f"/list {key}".strip()
        variants.append(Variant(largest, f"admin of {LARGEST} {text}", text))
    for key in ("", "overdue", "all"):
        text = f"/list {key}".strip()
        variants.append(Variant(EVERYWHERE, f"admin of all 12 {text}", text))
    variants.append(
        Variant(busiest_resident, "resident «Мои обращения»", "Мои обращения", resident=True)
    )
    variants.append(Variant(busiest_resident, "resident «Ещё»", "Ещё", resident=True))
    return variants


def _prepare(path: Path, backlog: int) -> tuple[int, str, dict[str, int]]:
    """Reopen `backlog` closed appeals, add the administrator of every settlement; the
    number half-way down, the busiest resident, and how many appeals have each status."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        reopened = conn.execute(
            "SELECT count(*) FROM channel_state WHERE key = 'bench:backlog'"
        ).fetchone()[0]
        if not reopened and backlog:
            conn.execute("BEGIN")
            conn.execute(
                "UPDATE appeals SET status = CASE WHEN id % 2 THEN 'new' ELSE 'in_progress'"
                " END, rating = NULL WHERE id IN (SELECT id FROM appeals WHERE status ="
                " 'closed' AND id % 7 = 3 LIMIT ?)",
                (backlog,),
            )
            conn.executemany(
                "INSERT OR IGNORE INTO staff (identity, role, settlement, source, added_at)"
                " VALUES (?, 'admin', ?, 'command', '2025-01-01T00:00:00.000000Z')",
                [(f"vk:{EVERYWHERE}", code) for code in SETTLEMENTS],
            )
            conn.execute(
                "INSERT INTO channel_state (key, value, updated_at)"
                " VALUES ('bench:backlog', ?, '2025-01-01T00:00:00.000000Z')",
                (str(backlog),),
            )
            conn.execute("COMMIT")
        total = conn.execute("SELECT max(id) FROM appeals").fetchone()[0]
        # bench/report.py gives the first resident the most appeals.
        busiest = conn.execute("SELECT user_id FROM residents WHERE id = 1").fetchone()[0]
        statuses = dict(conn.execute("SELECT status, count(*) FROM appeals GROUP BY status"))
    finally:
        conn.close()
    return int(total) // 2, str(busiest), {str(k): int(v) for k, v in statuses.items()}


async def _measure(path: Path, runs: int, deep: int, busiest: str) -> list[tuple[str, ...]]:
    settings = await _settings()
    now = datetime(YEAR + 1, 1, 1, 9, tzinfo=TZ).astimezone(UTC)
    began = time.perf_counter()
    database = await Database.open(path)  # migrates an older file (indexes built here)
    opened = time.perf_counter() - began
    engine = Engine(database, settings, clock=lambda: now)
    rows: list[tuple[str, ...]] = [
        ("opening the file (migrations, once)", f"{opened:.1f} s", "", "", "", "")
    ]
    update = 0
    try:
        for variant in _variants(deep, busiest):
            walls: list[float] = []
            cpus: list[float] = []
            for run in range(runs + 1):
                update += 1
                payload = variant.payload
                if payload is not None:
                    payload = payload.format(last=await _last_listed(database, variant.who))
                elif variant.text == "Ещё":  # a list with a next page first (not timed)
                    first = "Мои обращения" if variant.resident else "/list"
                    await engine.handle(_incoming(variant, first, None, update))
                    update += 1
                message = _incoming(variant, variant.text, payload, update)
                handled: list[bool] = []
                wall, cpu = await _stall(_handle(engine, message, handled))
                if handled != [True]:
                    raise RuntimeError(f"{variant.title}: the update was not handled")
                if run:  # the first is a warm-up
                    walls.append(wall)
                    cpus.append(cpu)
            rows.append(
                (
                    variant.title,
                    f"{max(cpus) * 1000:.2f}",
                    f"{statistics.median(cpus) * 1000:.2f}",
                    f"{max(walls) * 1000:.2f}",
                    f"{statistics.median(walls) * 1000:.2f}",
                    "met" if max(cpus) <= TARGET_MS / 1000 else "NOT MET",
                )
            )
    finally:
        await database.close()
    return rows


async def _handle(engine: Engine, message: Incoming, handled: list[bool]) -> None:
    handled.append(await engine.handle(message))


def _incoming(variant: Variant, text: str, payload: str | None, update: int) -> Incoming:
    return Incoming(
        platform="vk",
        chat_id=variant.who,
        user_id=variant.who,
        received_at=datetime.now(UTC),
        text=text if payload is None else "",
        payload=payload,
        display_name="Житель" if variant.resident else "",
        event_id=f"bench:{RUN}:{update}",  # a reused file has seen earlier runs' ids
    )


async def _last_listed(database: Database, who: str) -> int:
    """The number of the last appeal the moderator's latest `/list all` page showed."""
    async with database.transaction() as tx:
        page = await tx.appeals.listing(
            statuses=tuple(Status), settlements=None, newest_first=True, limit=30
        )
    return page.rows[-1][0].number


async def _stall(work: Awaitable[object]) -> tuple[float, float]:
    """Run `work` and return the longest time the loop was held meanwhile: in wall-clock
    seconds, and in CPU seconds of the loop's thread (what the code itself took, whatever
    else the machine is busy with)."""
    done = False
    wall = cpu = 0.0

    async def watch() -> None:
        nonlocal wall, cpu
        last, last_cpu = time.perf_counter(), time.thread_time()
        while not done:
            await asyncio.sleep(0)
            now, now_cpu = time.perf_counter(), time.thread_time()
            wall, cpu = max(wall, now - last), max(cpu, now_cpu - last_cpu)
            last, last_cpu = now, now_cpu

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0)  # the watcher is running
    try:
        await work
    finally:
        done = True
        await watcher
    return wall, cpu


async def _mixed(path: Path, seconds: float, residents: int, moderator_reads: bool) -> list[str]:
    """Residents walk the dialogue (a step every `THINK` s each), with `moderator_reads`
    while a moderator sends `/stats` for the whole year and `/list all` one after another;
    a ticker measures the loop's lag (wall clock, and CPU of the loop's thread: what ran on
    the loop, whatever else the machine is busy with). Returns the printed lines."""
    from bench.common import DIALOGUE

    now = datetime(YEAR + 1, 1, 1, 9, tzinfo=TZ).astimezone(UTC)
    database = await Database.open(path)
    engine = Engine(database, await _settings(), clock=lambda: now)
    gc.freeze()  # as App.start does once it has started
    steps: list[float] = []
    commands: dict[str, list[float]] = {}
    lag = lag_cpu = 0.0
    stop_at = time.perf_counter() + seconds
    update = 0

    def event() -> str:
        nonlocal update
        update += 1
        return f"mixed:{RUN}:{update}"

    async def ticker() -> None:
        nonlocal lag, lag_cpu
        while time.perf_counter() < stop_at:
            before, before_cpu = time.perf_counter(), time.thread_time()
            await asyncio.sleep(0.001)
            lag = max(lag, time.perf_counter() - before - 0.001)
            lag_cpu = max(lag_cpu, time.thread_time() - before_cpu)

    async def resident(number: int) -> None:
        who = str(5_000_000 + number)
        while time.perf_counter() < stop_at:
            for text, _ in DIALOGUE:
                message = Incoming(
                    "vk", who, who, datetime.now(UTC), text, "Житель", event_id=event()
                )
                began = time.perf_counter()
                await engine.handle(message)
                steps.append(time.perf_counter() - began)
                await asyncio.sleep(MIXED_THINK)
                if time.perf_counter() >= stop_at:
                    return

    async def moderator() -> None:
        texts = (f"/stats 01.01.{YEAR} 31.12.{YEAR}", "/list all")
        while time.perf_counter() < stop_at:
            for text in texts:
                message = Incoming(
                    "vk", MODERATOR, MODERATOR, datetime.now(UTC), text, event_id=event()
                )
                began = time.perf_counter()
                await engine.handle(message)
                commands.setdefault(text, []).append(time.perf_counter() - began)

    try:
        staff = [moderator()] if moderator_reads else []
        await asyncio.gather(ticker(), *staff, *(resident(n) for n in range(residents)))
    finally:
        await database.close()
    steps.sort()
    p99 = steps[max(0, math.ceil(0.99 * len(steps)) - 1)]
    beside = "while a moderator sends, one after another:" if moderator_reads else "alone:"
    lines = [
        f"{residents} residents (a step every {MIXED_THINK} s each) for {seconds:.0f} s {beside}",
        *(
            f"  {text}: {len(took)} times, median {statistics.median(took) * 1000:.0f} ms,"
            f" worst {max(took) * 1000:.0f} ms"
            for text, took in commands.items()
        ),
        f"  residents' steps: {len(steps)}, p50 {statistics.median(steps) * 1000:.1f} ms,"
        f" p99 {p99 * 1000:.1f} ms (target ≤ {MIXED_P99_MS:.0f}), worst {steps[-1] * 1000:.1f} ms",
        f"  longest event-loop stall: {lag_cpu * 1000:.1f} ms CPU of the loop's thread"
        f" (target ≤ {TARGET_MS:.0f}), {lag * 1000:.1f} ms wall clock",
    ]
    return lines


async def _settings() -> HandlerSettings:
    from bot.cli import example_config_path
    from bot.config import load_config
    from bot.settings import handler_settings

    settings = handler_settings(load_config(example_config_path()))
    # One resident types fast here: flood control is not what is measured.
    limits = dataclasses.replace(settings.limits, messages_per_minute=1_000_000)
    return dataclasses.replace(settings, limits=limits)


@contextlib.contextmanager
def _database(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="appeals-listings-") as folder:
        yield Path(folder) / "listings.db"


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench listings",
        description="The longest event-loop stall of every staff listing at a million appeals.",
    )
    parser.add_argument("--appeals", type=int, default=1_000_000, help="how many (1000000)")
    parser.add_argument(
        "--backlog", type=int, default=100_000, help="closed appeals reopened (100000)"
    )
    parser.add_argument("--db", type=Path, help="keep the database here (reused if it exists)")
    parser.add_argument("--runs", type=int, default=5, help="worst of this many runs (5)")
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument(
        "--mixed", type=float, default=30.0, help="seconds of residents beside a moderator (30)"
    )
    parser.add_argument("--residents", type=int, default=20, help="in the mixed run (20)")
    args = parser.parse_args(argv)
    logger.remove()  # every command is audited and logged

    with _database(args.db) as path:
        if path.exists():
            print(f"database: {path} (reused)")
        else:
            print(f"generating {args.appeals:,} appeals over {YEAR} into {path} …", flush=True)
            print(f"generated in {generate(path, args.appeals, seed=args.seed):.1f} s")
        deep, busiest, statuses = _prepare(path, args.backlog)
        size = path.stat().st_size / 2**20
        print(
            f"appeals: {sum(statuses.values()):,}   by status: "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(statuses.items()))
            + f"   file: {size:.0f} MB   SQLite {sqlite3.sqlite_version}"
        )
        print(
            f"longest event-loop stall per command, in ms, worst / median of {args.runs} runs;"
            f" CPU of the loop's thread (the target: {TARGET_MS:.0f} ms) and wall clock"
        )
        print()
        rows = asyncio.run(_measure(path, args.runs, deep, busiest))
        header = ("command", "CPU worst", "CPU median", "wall worst", "wall median", "")
        _print_table([header, *rows])
        if args.mixed:
            print()
            for moderator_reads in (False, True):
                for line in asyncio.run(_mixed(path, args.mixed, args.residents, moderator_reads)):
                    print(line)
    return 0


def _print_table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
