"""Benchmark of the dashboard's queue page (issue 21): `python -m bench dashboard`.

Builds a database of N appeals (1,000,000 by default) with the generator of
`bench/report.py` and the backlog of `bench/listings.py` (closed appeals turned back into
«Новое» / «В работе», so the queue of those waiting is long), starts the real app with
[dashboard] enabled on it, signs a moderator and the administrator of the largest settlement
in (a session row, as the sign-in link would make), and fetches the queue page with each
filter over real HTTP, `--runs` times after a warm-up. Prints the median and p95 of the whole
request (rendering included) per variant; the target is p95 ≤ 200 ms.

    python -m bench dashboard [--appeals 1000000] [--backlog 100000] [--db FILE] [--runs 40]

`--db FILE` keeps the database (reused if it exists). Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import secrets
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from loguru import logger

from bench.listings import LARGEST, _prepare
from bench.report import _database, generate
from bot.app import App
from bot.cli import example_config_path
from bot.config import load_config

TARGET_MS = 200.0
MODERATOR = "vk:1"  # bench/report.py's moderator
# (name, who, query string)
VARIANTS = (
    ("open, every settlement", "moderator", ""),
    ("all statuses", "moderator", "?status=all"),
    ("overdue", "moderator", "?overdue=1"),
    ("one settlement", "moderator", f"?settlement={LARGEST}"),
    ("category roads", "moderator", "?category=roads"),
    ("messenger tg", "moderator", "?platform=tg"),
    ("closed, newest first", "moderator", "?status=closed"),
    ("page after №{deep}", "moderator", "?after={deep}"),
    ("administrator, open", "admin", ""),
)


def _p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


async def _measure(path: Path, runs: int, deep: int) -> list[tuple[str, ...]]:
    base = load_config(example_config_path())
    admin = f"vk:bench-{LARGEST}"
    settlements = [
        s.model_copy(update={"admins": [admin]}) if s.code == LARGEST else s
        for s in base.settlements
    ]
    config = base.model_copy(
        update={
            "storage": base.storage.model_copy(update={"url": f"sqlite:///{path}"}),
            "web": base.web.model_copy(update={"port": 0, "public_url": "http://127.0.0.1"}),
            "dashboard": base.dashboard.model_copy(update={"enabled": True}),
            "moderators": base.moderators.model_copy(update={"ids": [MODERATOR]}),
            "settlements": settlements,
        }
    )
    app = App(config, [])
    await app.start()
    try:
        now = datetime.now(UTC)
        cookies = {}
        async with app.db.transaction() as tx:
            for who, identity in (("moderator", MODERATOR), ("admin", admin)):
                token = secrets.token_urlsafe(32)
                await tx.dashboard.start_session(token, identity, now, now + timedelta(hours=1))
                cookies[who] = token
        url = f"http://127.0.0.1:{app.web.port}/dashboard/"
        rows: list[tuple[str, ...]] = []
        async with aiohttp.ClientSession() as session:
            for name, who, query in VARIANTS:
                target = url + query.format(deep=deep)
                headers = {"Cookie": f"appeals_dashboard={cookies[who]}"}
                times: list[float] = []
                for run in range(runs + 1):
                    began = time.perf_counter()
                    async with session.get(target, headers=headers) as response:
                        body = await response.read()
                        assert response.status == 200, (target, response.status)
                    if run:  # the first is the warm-up
                        times.append((time.perf_counter() - began) * 1000)
                listed = body.count(b'href="/dashboard/appeals/')
                p95 = _p95(times)
                rows.append(
                    (
                        name.format(deep=deep),
                        str(listed),
                        f"{statistics.median(times):.1f}",
                        f"{p95:.1f}",
                        "ok" if p95 <= TARGET_MS else "OVER",
                    )
                )
        return rows
    finally:
        await app.stop()


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench dashboard", description=__doc__)
    parser.add_argument("--appeals", type=int, default=1_000_000, help="how many (1000000)")
    parser.add_argument("--backlog", type=int, default=100_000, help="closed reopened (100000)")
    parser.add_argument("--db", type=Path, help="keep the database here (reused if it exists)")
    parser.add_argument("--runs", type=int, default=40, help="requests per variant (40)")
    args = parser.parse_args(argv)
    logger.remove()
    with _database(args.db) as path:
        if not path.exists():
            seconds = generate(path, args.appeals)
            print(f"generated {args.appeals} appeals in {seconds:.0f} s")
        deep, _, statuses = _prepare(path, args.backlog)
        print("appeals by status:", statuses)
        rows = asyncio.run(_measure(path, args.runs, deep))
    header = ("queue page", "rows", "median ms", "p95 ms", f"≤ {TARGET_MS:.0f} ms")
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    return 0
