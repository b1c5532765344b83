"""Start-up time: `python -m bench startup [--runs 5] [--quick]`.

- demo: wall time from spawning `python -m bot demo` (stdin and stdout pipes) to the intro
  text arriving on its stdout; then stdin is closed and the demo exits.
- run: wall time from spawning `python -m bot run --config …` to the first long-poll
  request (VK `/lp`, Telegram `getUpdates`) that the fake sees, with only VK enabled, only
  Telegram enabled, and both (then: until both fakes were polled). The fakes run in
  processes of their own (tests/fakes/serve_bench.py) and note the moment with
  time.time(); the database file is kept between runs, as at a restart.
"""

from __future__ import annotations

import argparse
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.common import (
    ROOT,
    FakeProcess,
    clean_env,
    fakes,
    print_table,
    spawn_bot,
    spread,
    stop,
    wait_until,
    write_config,
)
from handlers import texts

INTRO = texts.DEMO_INTRO.split("\n")[0].encode()


def demo_once() -> float:
    began = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "demo"],
        cwd=ROOT,
        env=clean_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None and process.stdin is not None
    seen = b""
    elapsed = float("nan")
    try:
        while time.perf_counter() - began < 30:
            ready, _, _ = select.select([process.stdout], [], [], 0.01)
            if not ready:
                continue
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                break
            seen += chunk
            if INTRO in seen:
                elapsed = time.perf_counter() - began
                break
    finally:
        process.stdin.close()
        process.stdout.close()
        stop(process)
    return elapsed


def run_once(folder: Path, config: Path, watched: Sequence[FakeProcess]) -> float:
    for fake in watched:
        fake.call("/reset", {})
    began = time.time()
    process = spawn_bot(config, folder)
    try:
        polls: dict[str, float] = {}

        def all_polled() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"appeals-bot exited; see {folder / 'bot.log'}")
            for fake in watched:
                if fake.kind not in polls:
                    first = fake.stats()["first_poll"]
                    if first is not None:
                        polls[fake.kind] = first
            return len(polls) == len(watched)

        wait_until(all_polled, 60, "the first long poll", every=0.005)
        return max(polls.values()) - began
    finally:
        stop(process)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench startup", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="runs of each (5)")
    parser.add_argument("--quick", action="store_true", help="3 runs of each")
    args = parser.parse_args(argv)
    runs = 3 if args.quick else args.runs

    rows: list[tuple[str, ...]] = [("start-up, seconds", "min / median / max", "runs")]
    demo = [demo_once() for _ in range(runs)]
    rows.append(("demo → intro on stdout", spread(demo), str(runs)))
    with tempfile.TemporaryDirectory(prefix="appeals-bench-") as name:
        folder = Path(name)
        with fakes(folder, ["vk", "telegram"]) as started:
            vk, tg = started["vk"], started["telegram"]
            cases = [
                ("run, VK only → first /lp", {"vk": vk.api_url}, [vk]),
                ("run, Telegram only → first getUpdates", {"telegram": tg.api_url}, [tg]),
                (
                    "run, VK + Telegram → both polled",
                    {"vk": vk.api_url, "telegram": tg.api_url},
                    [vk, tg],
                ),
            ]
            for index, (label, urls, watched) in enumerate(cases):
                case = folder / f"case{index}"
                case.mkdir()
                config = write_config(case, **urls)
                times = [run_once(case, config, watched) for _ in range(runs)]
                rows.append((label, spread(times), str(runs)))
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
