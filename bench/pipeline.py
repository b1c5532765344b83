"""The whole pipeline against the bare framework: `python -m bench pipeline [--quick]
[--platforms vk,telegram] [--runs 3] [--residents 100] [--paced-rate 100]
[--postgres postgresql://…]`.

A fake VK or Telegram server runs in its own process (tests/fakes/serve_bench.py), a fresh
one for every measurement, and drives the residents itself: each resident sends a
message, and when the reply that ends the step arrives, sends the next one.
In turn, in every run (the order alternates run by run):

  (a) the bare echo bot of the same framework (bench/echo.py: vkbottle `Bot` / aiogram
      `Dispatcher`, one handler that answers the text);
  (b) `python -m bot run` with a real config file, a real SQLite file and the real outbox,
      send_rate = per_chat_rate = 0 and the flood limit raised, so only the product is
      measured; every resident walks the whole dialogue (10 steps, the appeal registered,
      the settlement's administrator notified).

With `--postgres URL` a third, (c): the same bot on PostgreSQL (SPEC §15), one instance, in a
fresh schema of that database for every measurement (dropped afterwards), beside SQLite's.

All get the same load: `--residents` people at once, 10 messages each (the echo bot gets
the dialogue's texts and answers each with one message). Figures for each:

  msgs/s   resident messages answered / (first update delivered → last reply arrived),
           both on the fake's clock;
  CPU ms   CPU time of the bot process (/proc/PID/stat) over the walk / messages;
  p50/p99  latency from the fake's delivery of an update (the long-poll or getUpdates answer
           that carries it) to the arrival of the reply that ends the step.

Then a paced run at about `--paced-rate` messages/s (residents think 0.5 s between steps)
for the added latency at a realistic load. The ratio (b)/(a) is taken pair by pair.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loguru import logger

from bench.common import (
    DIALOGUE,
    ROOT,
    FakeProcess,
    clean_env,
    cpu_seconds,
    fakes,
    print_table,
    spawn_bot,
    spread,
    stop,
    wait_until,
    write_config,
)

THINK = 0.5  # seconds between a reply and the next step in the paced run
WARM_UP_RESIDENTS = 50  # imports, lazy schemas, caches: 500 messages before measuring


@dataclass
class Figures:
    rate: float
    cpu_ms: float
    p50: float
    p99: float
    messages: int


def _spawn(
    kind: str, platform: str, fake: FakeProcess, folder: Path, storage_url: str | None = None
) -> subprocess.Popen[Any]:
    if kind == "echo":
        log = (folder / "echo.log").open("ab")
        return subprocess.Popen(
            [sys.executable, "-m", "bench.echo", platform, fake.api_url],
            cwd=folder,
            env=clean_env(PYTHONPATH=str(ROOT)),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    urls = {"vk": fake.api_url} if platform == "vk" else {"telegram": fake.api_url}
    return spawn_bot(write_config(folder, unlimited=True, storage_url=storage_url, **urls), folder)


@contextlib.contextmanager
def _postgres_schema(url: str) -> Iterator[str]:
    """A fresh schema on the server of `url`, dropped afterwards; the URL that uses it."""
    import psycopg

    schema = f"appeals_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _walk(
    fake: FakeProcess,
    process: subprocess.Popen[Any],
    first_user: int,
    residents: int,
    steps: list[tuple[str, str | None]],
    think: float = 0.0,
) -> Figures:
    began = cpu_seconds(process.pid)
    fake.call(
        "/walk",
        {"first_user": first_user, "residents": residents, "steps": steps, "think": think},
    )
    total = residents * len(steps)
    state: dict[str, Any] = {}

    def done() -> bool:
        if process.poll() is not None:
            raise RuntimeError("the bot exited during the walk")
        state.update(fake.stats())
        return bool(state["completed"] >= total)

    try:
        wait_until(done, 120 + total * think, f"{total} replies", every=0.05)
    except TimeoutError:
        print(f"  (timed out: {state.get('completed')} of {total}; {state.get('errors')})")
        raise
    cpu = cpu_seconds(process.pid) - began
    elapsed = max(state["last_reply"] - state["first_delivery"], 1e-9)
    latency = state["latency_ms"]
    return Figures(total / elapsed, cpu * 1000 / total, latency["p50"], latency["p99"], total)


def _one(
    kind: str,
    platform: str,
    fake: FakeProcess,
    base: Path,
    residents: int,
    paced: int,
    postgres: str | None = None,
    *,
    storage_url: str | None = None,
) -> tuple[Figures, Figures | None]:
    if kind == "postgres":  # the product, in a fresh schema of that server's database
        assert postgres is not None
        with _postgres_schema(postgres) as url:
            return _one("product", platform, fake, base, residents, paced, storage_url=url)
    folder = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=base))
    fake.call("/reset", {})
    process = _spawn(kind, platform, fake, folder, storage_url)
    try:
        wait_until(lambda: fake.stats()["first_poll"] is not None, 60, "the first poll")
        steps = DIALOGUE if kind == "product" else [(text, None) for text, _ in DIALOGUE]
        _walk(fake, process, 1_000_000, WARM_UP_RESIDENTS, steps)  # imports, caches
        full = _walk(fake, process, 2_000_000, residents, steps)
        paced_figures = None
        if paced:
            people = max(1, round(paced * THINK))
            paced_figures = _walk(fake, process, 3_000_000, people, steps, think=THINK)
        return full, paced_figures
    finally:
        stop(process)


async def _round_trips(residents: int = 20) -> list[tuple[str, int, float, int]]:
    """Database round trips per dialogue step (waits for the database's thread), counted
    in-process on the real `Engine` and database: each step's own transaction, BEGIN and
    COMMIT included (alone, an update pays
    for its COMMIT; under load a group commit shares it). Sending the reply adds the
    delivery's round trips (read the due rows, mark them sent), shared by a pass's sends."""
    from bot.cli import example_config_path
    from bot.config import load_config
    from bot.settings import handler_settings
    from handlers.engine import Engine
    from handlers.messages import Incoming
    from storage.db import Database

    settings = handler_settings(load_config(example_config_path()))
    limits = dataclasses.replace(settings.limits, messages_per_minute=1_000_000)
    settings = dataclasses.replace(settings, limits=limits)
    counts: list[list[int]] = [[] for _ in DIALOGUE]
    statements: list[list[int]] = [[] for _ in DIALOGUE]
    with tempfile.TemporaryDirectory(prefix="appeals-trips-") as folder:
        logger.remove()  # the dialogue's own log lines are not what is printed here
        database = await Database.open(Path(folder) / "appeals.db")
        async with database.transaction() as tx:  # the settlement's administrator
            await tx.staff.add("vk:600", "admin", "sergino", "bench", datetime.now(UTC))
        engine = Engine(database, settings)
        update = 0
        try:
            for resident in range(residents):
                for step, (text, _) in enumerate(DIALOGUE):
                    update += 1
                    message = Incoming(
                        platform="vk",
                        chat_id=str(500 + resident),
                        user_id=str(500 + resident),
                        received_at=datetime.now(UTC),
                        text=text,
                        display_name="Житель",
                        event_id=str(update),
                    )
                    before, issued = database.round_trips, database.statements
                    if not await engine.handle(message):
                        raise RuntimeError(f"step {step + 1} was not handled")
                    counts[step].append(database.round_trips - before)
                    statements[step].append(database.statements - issued)
        finally:
            await database.close()
    return [
        (text, max(c), statistics.mean(c), max(s))
        for (text, _), c, s in zip(DIALOGUE, counts, statements, strict=True)
    ]


async def _statement_cost(count: int = 5000) -> tuple[float, float]:
    """CPU µs per statement (both threads): a small INSERT through aiosqlite, posted five at
    a time as an update's writes are (the five go in one trip to aiosqlite's thread), and
    the same through the standard sqlite3 module on the calling thread. The difference is
    aiosqlite's hop to its thread and back (a future, a queue, the GIL, a wake-up of the
    loop), paid once per trip."""
    from storage.sqlite import SqliteConnection

    create = "CREATE TABLE t (a INTEGER, b TEXT)"
    insert = "INSERT INTO t VALUES (?, ?)"
    with tempfile.TemporaryDirectory(prefix="appeals-hop-") as folder:
        conn = await SqliteConnection.connect(str(Path(folder) / "aio.db"))
        try:
            await conn.execute(create)
            await conn.execute("PRAGMA synchronous = OFF")
            start = time.process_time()
            for i in range(count // 5):
                for _ in range(5):
                    conn.post(insert, (i, "x"))
                await conn.flush()
            hop = (time.process_time() - start) / count * 1e6
        finally:
            await conn.close()
        raw = sqlite3.connect(Path(folder) / "raw.db", isolation_level=None)
        try:
            raw.execute(create)
            raw.execute("PRAGMA synchronous = OFF")
            start = time.process_time()
            for i in range(count):
                raw.execute(insert, (i, "x"))
            direct = (time.process_time() - start) / count * 1e6
        finally:
            raw.close()
    return hop, direct


def _print_round_trips() -> None:
    trips = asyncio.run(_round_trips())
    print(
        "Database round trips per dialogue step (waits for aiosqlite's thread, BEGIN and COMMIT"
        " included; the writes of an update go together in one), and statements:"
    )
    for text, most, mean, issued in trips:
        print(f"  {text[:40]:<40} {most:>3} (mean {mean:.1f})  {issued:>3} statements")
    ordinary = [most for text, most, _, _ in trips if text != "Отправить"]
    print(f"  an ordinary step: at most {max(ordinary)}; registering the appeal: {trips[-1][1]}")
    hop, direct = asyncio.run(_statement_cost())
    print(
        f"  CPU per statement: {hop:.0f} µs through aiosqlite (posted five at a time: one hop"
        f" to its thread and back for the five), {direct:.0f} µs with sqlite3 on the calling"
        " thread"
    )
    print()


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench pipeline", description=__doc__)
    parser.add_argument("--platforms", default="vk,telegram", help="vk,telegram")
    parser.add_argument("--runs", type=int, default=3, help="alternating pairs (3)")
    parser.add_argument("--residents", type=int, default=100, help="at once (100)")
    parser.add_argument("--paced-rate", type=int, default=100, help="messages/s, 0 = skip")
    parser.add_argument("--quick", action="store_true", help="2 runs of 50 residents")
    parser.add_argument(
        "--postgres", metavar="URL", help="also (c): the bot on PostgreSQL (a schema of URL's)"
    )
    args = parser.parse_args(argv)
    runs, residents = (2, 50) if args.quick else (args.runs, args.residents)
    platforms = [p for p in args.platforms.split(",") if p]
    steps = len(DIALOGUE)
    _print_round_trips()
    print(
        f"{residents} residents at once × {steps} messages, {runs} alternating runs; "
        f"paced: ~{args.paced_rate} msgs/s"
    )
    rows: list[tuple[str, ...]] = [
        ("", "msgs/s", "CPU ms/msg", "p50 ms", "p99 ms", "(b)/(a) msgs/s")
    ]
    with tempfile.TemporaryDirectory(prefix="appeals-bench-") as name:
        base = Path(name)
        for platform in platforms:
            kinds = ["echo", "product", *(["postgres"] if args.postgres else [])]
            results: dict[str, list[tuple[Figures, Figures | None]]] = {k: [] for k in kinds}
            for run in range(runs):
                order = kinds if run % 2 == 0 else kinds[::-1]
                for kind in order:
                    started_at = time.perf_counter()
                    # A fresh fake for every measurement: its records grow with each run.
                    with fakes(Path(tempfile.mkdtemp(dir=base)), [platform]) as started:
                        figures = _one(
                            kind,
                            platform,
                            started[platform],
                            base,
                            residents,
                            args.paced_rate,
                            args.postgres,
                        )
                    results[kind].append(figures)
                    full = figures[0]
                    print(
                        f"  {platform} run {run + 1} {kind}: {full.rate:.0f} msgs/s, "
                        f"{full.cpu_ms:.2f} CPU ms/msg, p99 {full.p99:.1f} ms "
                        f"({time.perf_counter() - started_at:.0f} s)",
                        flush=True,
                    )
            ratios = {
                kind: [
                    b[0].rate / a[0].rate
                    for a, b in zip(results["echo"], results[kind], strict=True)
                ]
                for kind in kinds[1:]
            }
            label = {"vk": "VK", "telegram": "Telegram"}[platform]
            titles = [
                ("echo", "(a) bare echo"),
                ("product", "(b) appeals-bot"),
                ("postgres", "(c) appeals-bot, PostgreSQL"),
            ][: len(kinds)]
            for kind, title in titles:
                full_runs = [f for f, _ in results[kind]]
                rows.append(
                    (
                        f"{label} {title}",
                        spread([f.rate for f in full_runs], "{:.0f}"),
                        spread([f.cpu_ms for f in full_runs]),
                        spread([f.p50 for f in full_runs], "{:.1f}"),
                        spread([f.p99 for f in full_runs], "{:.1f}"),
                        spread(ratios[kind]) if kind != "echo" else "",
                    )
                )
            for kind, title in titles:
                paced_runs = [p for _, p in results[kind] if p is not None]
                if paced_runs:
                    rows.append(
                        (
                            f"{label} {title}, paced",
                            spread([p.rate for p in paced_runs], "{:.0f}"),
                            spread([p.cpu_ms for p in paced_runs]),
                            spread([p.p50 for p in paced_runs], "{:.1f}"),
                            spread([p.p99 for p in paced_runs], "{:.1f}"),
                            "",
                        )
                    )
            echo_paced = [p.p99 for _, p in results["echo"] if p is not None]
            product_paced = [p.p99 for _, p in results["product"] if p is not None]
            if echo_paced and product_paced:
                added = statistics.median(product_paced) - statistics.median(echo_paced)
                rows.append(
                    (
                        f"{label} added p99 latency, paced (medians)",
                        "",
                        "",
                        "",
                        f"{added:.1f}",
                        "",
                    )
                )
    print()
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
