"""Memory: `python -m bench memory [--residents 10000] [--quick]`.

RSS is VmRSS from /proc/PID/status.

- `python -m bot run` with VK enabled against the fake VK (its own process), idle: once
  it long-polls and 2 s have passed.
- The same process after `--residents` residents each walked half a dialogue through real
  updates (message_new pushed by the fake, answered by the bot): «Подать обращение»,
  «Согласен», «Дороги» by default (`--steps 3`: the draft holds consent and a category and
  waits for the settlement; `--steps 5` adds the settlement and a description), so each
  leaves a draft in the database. send_rate is 0 and the flood limit raised for this part
  only, or 10,000 residents would take VK's 20 sends/s × 50,000 replies ≈ 40 minutes. The
  drafts are counted in the database afterwards.
- `python -m bot demo` idle, stdin a pipe: once the intro is printed and 1 s has passed;
  and which messenger libraries it imported (`-X importtime`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.common import (
    HALF_DIALOGUE,
    ROOT,
    clean_env,
    fakes,
    print_table,
    rss_mib,
    spawn_bot,
    stop,
    wait_until,
    write_config,
)
from bench.startup import INTRO

MESSENGER_LIBRARIES = ("vkbottle", "aiogram", "maxapi")


def _demo(importtime: bool) -> tuple[float, str]:
    """RSS of the idle demo (MiB), and the messenger libraries it imported (with -X importtime)."""
    flags = ["-X", "importtime"] if importtime else []
    process = subprocess.Popen(
        [sys.executable, *flags, "-m", "bot", "demo"],
        cwd=ROOT,
        env=clean_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stdin is not None
    seen = b""
    began = time.monotonic()
    while INTRO not in seen and time.monotonic() - began < 30:
        ready, _, _ = select.select([process.stdout], [], [], 0.05)
        if ready:
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                break
            seen += chunk
    time.sleep(1.0)
    rss = rss_mib(process.pid)
    _, err = process.communicate(b"", timeout=30)
    imported = sorted(
        {
            lib
            for line in err.decode(errors="replace").splitlines()
            if line.startswith("import time:")
            for lib in MESSENGER_LIBRARIES
            if line.split("|")[-1].strip() == lib
        }
    )
    return rss, ", ".join(imported) or "none"


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench memory", description=__doc__)
    parser.add_argument("--residents", type=int, default=10_000, help="half-way dialogues")
    parser.add_argument(
        "--steps", type=int, default=3, help="dialogue steps each resident takes (3, at most 5)"
    )
    parser.add_argument("--quick", action="store_true", help="2,000 residents")
    args = parser.parse_args(argv)
    residents = 2_000 if args.quick else args.residents
    steps = HALF_DIALOGUE[: max(1, min(args.steps, len(HALF_DIALOGUE)))]

    rows: list[tuple[str, ...]] = [("process", "RSS MiB", "notes")]
    with tempfile.TemporaryDirectory(prefix="appeals-bench-") as name:
        folder = Path(name)
        with fakes(folder, ["vk"]) as started:
            fake = started["vk"]
            config = write_config(folder, vk=fake.api_url, unlimited=True)
            process = spawn_bot(config, folder)
            try:
                wait_until(lambda: fake.stats()["first_poll"] is not None, 60, "the first poll")
                time.sleep(2.0)
                idle = rss_mib(process.pid)
                rows.append(("run, VK, idle", f"{idle:.1f}", "long-polling the fake"))
                began = time.perf_counter()
                fake.call("/walk", {"first_user": 100_000, "residents": residents, "steps": steps})
                total = residents * len(steps)
                wait_until(
                    lambda: fake.stats()["completed"] >= total, 900, "half dialogues", every=0.5
                )
                walked = time.perf_counter() - began
                time.sleep(1.0)
                loaded = rss_mib(process.pid)
                with contextlib.closing(sqlite3.connect(folder / "appeals.db")) as conn:
                    drafts = conn.execute("SELECT count(*) FROM drafts").fetchone()[0]
                rows.append(
                    (
                        f"run, VK, after {residents:,} half dialogues",
                        f"{loaded:.1f}",
                        f"{total:,} updates in {walked:.0f} s; {drafts:,} drafts in the database",
                    )
                )
                last = steps[-1][0]
                rows.append(("  growth", f"{loaded - idle:+.1f}", f"each stopped after «{last}»"))
            finally:
                stop(process)
    rss, _ = _demo(importtime=False)
    _, imported = _demo(importtime=True)
    rows.append(("demo, idle", f"{rss:.1f}", f"messenger libraries imported: {imported}"))
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
