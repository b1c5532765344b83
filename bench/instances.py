"""Two instances against one on the same PostgreSQL (SPEC §15, issue 19's target):
`python -m bench instances [--postgres postgresql://…] [--residents 200] [--runs 2] [--quick]`.

Needs a PostgreSQL server: `--postgres URL`, or APPEALS_TEST_POSTGRES_URL; without either it
says so and exits (status 0, nothing measured). Every measurement gets a fresh schema of that
database, dropped afterwards.

The fake VK (Callback API) and Telegram (webhook) servers run in this process
(tests/fakes/serve_bench.py's BenchVK and BenchTelegram), and so do the residents: half on
VK, half on Telegram, all at once, each walking the whole dialogue (10 steps, the appeal
registered, the administrator notified). A step is one webhook POST to an instance; when the
reply that ends it reaches the fake, the resident posts the next step. In each run, in turn
(the order alternates run by run):

  one   one `python -m bot run` on PostgreSQL, every webhook posted to it;
  two   two of them on one schema, each webhook posted to one or the other in turn (a
        load balancer's round robin); the outbox rows are claimed by one instance each
        (FOR UPDATE SKIP LOCKED), appeal numbers come from the one database.

Each begins with a warm-up walk (imports, caches), then the measured walk. Figures:

  msgs/s        resident messages answered / (first webhook posted → last reply arrived)
  bot CPU ms    CPU of the bot process(es) over the walk / messages (both, for "two")
  postgres CPU  CPU of the PostgreSQL server's processes over the walk / messages (every
                process called "postgres" on this machine: other users' queries count too)
  driver CPU    this process (fakes and residents) / messages
  cores busy    all of that CPU / wall-clock time: near the machine's core count, the walk
                was CPU-bound
  machine busy  the whole machine's busy CPU (/proc/stat) / wall-clock time: above "cores
                busy", the rest was other users' work on the same cores
  PG commits    transactions committed in the database (pg_stat_database, every client of
                that database: other users' count too) / messages
  p50/p99       webhook posted → reply arrived

What limits the pair on this machine (2 cores): CPU. The machine runs at its 2 cores
during the walks ("machine busy" about 1.9) whether one instance or two serve them, so a
second instance adds an event loop but no core, and it costs more CPU per message than one
(bot about 3.3 ms against 2.5, PostgreSQL about 2.3 ms against 1.8, 3.1 commits a message
against 2.2): each instance's delivery passes read and try to claim the due rows the other
one holds (storage/outbox.py `due_heads` does not skip rows under another's claim), and
each has its own pool, inbox and delivery passes. Whether the pair is faster or slower
than one then depends on who else uses the cores: with another user's process busy on the
machine, two bot processes get a larger share of the cores than one (the scheduler shares
by process), and the pair comes out ahead for that reason alone. On a machine with a core
per instance and one for PostgreSQL, the pair is not limited this way; that is where its
figure would mean scaling. bench/RESULTS.md has the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import tempfile
import time
import tomllib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.common import (
    CLOCK_TICKS,
    DIALOGUE,
    cpu_seconds,
    print_table,
    spawn_bot,
    spread,
    stop,
    write_config,
    write_toml,
)
from bench.pipeline import _postgres_schema
from tests.fakes.serve_bench import BenchTelegram, BenchVK

POSTGRES_VAR = "APPEALS_TEST_POSTGRES_URL"
VK_GROUP = 777
VK_SECRET = "vk-bench-secret"
TG_SECRET = "tg-bench-secret"
WARM_UP_RESIDENTS = 40
POOL_SIZE = [10]  # [storage] pool_size of each instance (the default); --pool-size sets it


@dataclass
class Figures:
    rate: float
    bot_cpu_ms: float
    postgres_cpu_ms: float
    driver_cpu_ms: float
    cores: float
    machine: float
    transactions: float
    p50: float
    p99: float


def postgres_cpu() -> float:
    """CPU seconds of every process called "postgres" on this machine (server and backends
    alike; a backend that ended meanwhile takes its seconds with it)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            if (entry / "comm").read_text().strip() == "postgres":
                total += cpu_seconds(int(entry.name))
    return total


STATS_FLUSH_SECONDS = 1.2  # PostgreSQL 15 flushes a backend's statistics at most every 1 s


async def committed(url: str) -> int:
    """Transactions committed in the database so far (pg_stat_database), once the backends
    have had time to flush their statistics."""
    import psycopg

    await asyncio.sleep(STATS_FLUSH_SECONDS)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        )
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


def machine_busy() -> float:
    """CPU seconds every core of the machine spent not idle so far (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Residents:
    """The walkers: hooked into the fakes' sends (`on_sent`), posting each next step as a
    webhook to the instance whose turn it is."""

    def __init__(self, vk: BenchVK, tg: BenchTelegram, http: aiohttp.ClientSession) -> None:
        self.vk = vk
        self.tg = tg
        self.http = http
        self.urls: list[str] = []
        self.step: dict[int, int] = {}
        self.posted: dict[int, float] = {}
        self.latencies: list[float] = []
        self.total = 0
        self.completed = 0
        self.errors = 0
        self.done = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        vk.walker = self  # type: ignore[assignment]
        tg.walker = self  # type: ignore[assignment]

    # the Walker interface BenchVK and BenchTelegram call
    def polled(self) -> None:
        pass

    def on_delivered(self, user: int) -> None:
        pass

    def on_sent(self, user: int, text: str) -> None:
        index = self.step.get(user)
        if index is None or user not in self.posted:
            return
        marker = DIALOGUE[index][1]
        if marker is not None and marker not in text:
            return
        self.latencies.append(time.perf_counter() - self.posted.pop(user))
        self.completed += 1
        if index + 1 < len(DIALOGUE):
            self.step[user] = index + 1
            self._post(user)
        else:
            del self.step[user]
        if self.completed >= self.total:
            self.done.set()

    def _post(self, user: int) -> None:
        task = asyncio.get_running_loop().create_task(self._send(user))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _send(self, user: int) -> None:
        index = self.step[user]
        text = DIALOGUE[index][0]
        url = self.urls[(user + index) % len(self.urls)]
        if user % 2:
            body = dict(self.vk.message_new(user, text), secret=VK_SECRET)
            path, headers = "/vk/callback", {}
        else:
            body = self.tg.message(user, text)
            path, headers = "/tg/webhook", {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
        self.posted[user] = time.perf_counter()
        for _ in range(100):
            try:
                async with self.http.post(url + path, json=body, headers=headers) as answer:
                    if answer.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            self.errors += 1
            await asyncio.sleep(0.1)
        raise RuntimeError(f"no instance took the update of {user}")

    async def walk(self, urls: list[str], first_user: int, residents: int) -> float:
        """Everyone at once; seconds from the first post to the last reply."""
        self.urls = urls
        self.latencies = []
        self.completed = 0
        self.total = residents * len(DIALOGUE)
        self.done.clear()
        started = time.perf_counter()
        for user in range(first_user, first_user + residents):
            self.step[user] = 0
            self._post(user)
        try:
            await asyncio.wait_for(self.done.wait(), 60 + self.total * 0.1)
        except TimeoutError:
            raise RuntimeError(
                f"{self.completed} of {self.total} steps answered; {self.errors} posts refused"
            ) from None
        return time.perf_counter() - started


def _config(folder: Path, url: str, vk: BenchVK, tg: BenchTelegram) -> tuple[Path, int]:
    """The benchmark's config (bench/common.py) with VK by Callback API and Telegram by
    webhook, on a port of its own; (its path, the port)."""
    path = write_config(folder, vk=vk.api_url, telegram=tg.url, unlimited=True, storage_url=url)
    data = tomllib.loads(path.read_text("utf-8"))
    port = free_port()
    data["web"]["port"] = port
    data["storage"]["pool_size"] = POOL_SIZE[0]
    data["vk"].update(
        mode="callback",
        callback_path="/vk/callback",
        callback_secret=VK_SECRET,
        confirmation_code="abc123",
    )
    data["telegram"].update(
        mode="webhook",
        webhook_path="/tg/webhook",
        webhook_url="https://bot.example/tg/webhook",
        webhook_secret=TG_SECRET,
    )
    write_toml(path, data)
    return path, port


@contextlib.asynccontextmanager
async def _instances(
    count: int, url: str, base: Path, vk: BenchVK, tg: BenchTelegram, http: aiohttp.ClientSession
) -> AsyncIterator[list[tuple[subprocess.Popen[bytes], str]]]:
    """`count` instances of `python -m bot run` on the database `url`, once each answers
    /healthz; (process, its address)."""
    started: list[tuple[subprocess.Popen[bytes], str]] = []
    try:
        for n in range(count):
            folder = Path(tempfile.mkdtemp(prefix=f"instance{n}-", dir=base))
            config, port = _config(folder, url, vk, tg)
            process = spawn_bot(config, folder)
            address = f"http://127.0.0.1:{port}"
            started.append((process, address))
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"an instance exited at start: see {folder}/bot.log")
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{address}/healthz"):
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"instance {n} did not listen within 60 s")
                await asyncio.sleep(0.1)
        yield started
    finally:
        for process, _ in started:
            stop(process)


async def _measure(
    count: int, postgres: str, base: Path, residents: int, run: int
) -> tuple[Figures, int]:
    """One measurement: `count` instances on a fresh schema; (figures, messages)."""
    vk, tg = BenchVK(VK_GROUP, hold_seconds=0.2), BenchTelegram(hold_seconds=0.2)
    await vk.start()
    await tg.start()
    connector = aiohttp.TCPConnector(limit=0)
    http = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30))
    try:
        with _postgres_schema(postgres) as url:
            async with _instances(count, url, base, vk, tg, http) as started:
                walkers = Residents(vk, tg, http)
                urls = [address for _, address in started]
                first = 1_000_000 * (run + 1) + 100_000 * count
                await walkers.walk(urls, first, WARM_UP_RESIDENTS)
                pids = [process.pid for process, _ in started]
                commits_before = await committed(url)
                bot_before = sum(cpu_seconds(pid) for pid in pids)
                pg_before = postgres_cpu()
                me_before = time.process_time()
                machine_before = machine_busy()
                elapsed = await walkers.walk(urls, first + 10_000, residents)
                bot = sum(cpu_seconds(pid) for pid in pids) - bot_before
                pg = postgres_cpu() - pg_before
                me = time.process_time() - me_before
                machine = machine_busy() - machine_before
                commits = await committed(url) - commits_before
                messages = residents * len(DIALOGUE)
                ordered = sorted(walkers.latencies)
                figures = Figures(
                    rate=messages / elapsed,
                    bot_cpu_ms=bot * 1000 / messages,
                    postgres_cpu_ms=pg * 1000 / messages,
                    driver_cpu_ms=me * 1000 / messages,
                    cores=(bot + pg + me) / elapsed,
                    machine=machine / elapsed,
                    transactions=commits / messages,
                    p50=statistics.median(ordered) * 1000,
                    p99=ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000,
                )
                return figures, messages
    finally:
        await http.close()
        await tg.stop()
        await vk.stop()


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench instances", description=__doc__)
    parser.add_argument(
        "--postgres", metavar="URL", help=f"the PostgreSQL server (default: ${POSTGRES_VAR})"
    )
    parser.add_argument("--residents", type=int, default=200, help="at once, half on VK (200)")
    parser.add_argument("--runs", type=int, default=2, help="alternating pairs (2)")
    parser.add_argument("--quick", action="store_true", help="1 run of 100 residents")
    parser.add_argument(
        "--pool-size", type=int, default=POOL_SIZE[0], help="[storage] pool_size of each (10)"
    )
    args = parser.parse_args(argv)
    POOL_SIZE[0] = args.pool_size
    postgres = args.postgres or os.environ.get(POSTGRES_VAR, "")
    if not postgres:
        print(
            f"skipped: no PostgreSQL server to measure on; pass --postgres postgresql://… "
            f"or set {POSTGRES_VAR}"
        )
        return 0
    runs, residents = (1, 100) if args.quick else (args.runs, args.residents)
    cores = os.cpu_count() or 1
    print(
        f"{residents} residents at once (half VK callback, half Telegram webhook) × "
        f"{len(DIALOGUE)} messages, {runs} alternating runs, pool_size {args.pool_size}; "
        f"{cores} cores, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    results: dict[int, list[Figures]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory(prefix="appeals-instances-") as name:
        for run in range(runs):
            for count in (1, 2) if run % 2 == 0 else (2, 1):
                began = time.perf_counter()
                figures, _ = asyncio.run(_measure(count, postgres, Path(name), residents, run))
                results[count].append(figures)
                print(
                    f"  run {run + 1}, {count} instance{'s' if count > 1 else ''}: "
                    f"{figures.rate:.0f} msgs/s, bot CPU {figures.bot_cpu_ms:.2f} ms/msg, "
                    f"{figures.cores:.2f} cores busy, machine {figures.machine:.2f} "
                    f"({time.perf_counter() - began:.0f} s)",
                    flush=True,
                )
    rows: list[tuple[str, ...]] = [
        (
            "",
            "msgs/s",
            "bot CPU ms/msg",
            "postgres CPU ms/msg",
            "driver CPU ms/msg",
            "cores busy",
            "machine busy",
            "PG commits/msg",
            "p50 ms",
            "p99 ms",
        )
    ]
    for count, title in ((1, "one instance"), (2, "two instances")):
        got = results[count]
        rows.append(
            (
                title,
                spread([f.rate for f in got], "{:.0f}"),
                spread([f.bot_cpu_ms for f in got]),
                spread([f.postgres_cpu_ms for f in got]),
                spread([f.driver_cpu_ms for f in got]),
                spread([f.cores for f in got]),
                spread([f.machine for f in got]),
                spread([f.transactions for f in got], "{:.1f}"),
                spread([f.p50 for f in got], "{:.1f}"),
                spread([f.p99 for f in got], "{:.1f}"),
            )
        )
    ratios = [b.rate / a.rate for a, b in zip(results[1], results[2], strict=True)]
    print()
    print_table(rows)
    print(f"\ntwo / one, msgs/s, run by run: {spread(ratios)}")
    busy = statistics.median(f.machine for got in results.values() for f in got)
    if busy > 0.85 * cores:
        print(
            f"CPU-bound: the machine was {busy:.2f} of {cores} cores busy (median of the walks; "
            "bots, PostgreSQL, this driver and anyone else's work): a second instance adds "
            "an event loop but no core."
        )
    return 0
