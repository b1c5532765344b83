"""`python -m bench <name> …`: run one benchmark."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence


def _program(module: str) -> Callable[[Sequence[str]], int]:
    def run(argv: Sequence[str]) -> int:
        main: Callable[[Sequence[str]], int] = importlib.import_module(module).main
        return main(argv)

    return run


BENCHMARKS: dict[str, Callable[[Sequence[str]], int]] = {
    "report": _program("bench.report"),
    "startup": _program("bench.startup"),
    "memory": _program("bench.memory"),
    "burst": _program("bench.burst"),
    "pipeline": _program("bench.pipeline"),
    "listings": _program("bench.listings"),
    "dashboard": _program("bench.dashboard"),
    "instances": _program("bench.instances"),
}

DESCRIPTIONS: dict[str, str] = {
    "report": "the yearly report over a generated year of appeals",
    "startup": "start-up time of the demo and of the bot",
    "memory": "resident memory as residents and appeals grow",
    "burst": "bursts of answers against the messengers' send limits",
    "pipeline": "the whole pipeline against the bare framework",
    "listings": "event-loop stalls of every staff listing over a million appeals",
    "dashboard": "the dashboard's queue page over a million appeals (p95 ≤ 200 ms)",
    "instances": "two instances against one on the same PostgreSQL (webhooks)",
}

USAGE = f"usage: python -m bench {{{'|'.join(BENCHMARKS)}}} [options]"


def help_text() -> str:
    width = max(map(len, BENCHMARKS))
    lines = [USAGE, "", "Run one benchmark (bench/RESULTS.md has the latest results).", ""]
    lines += [f"  {name:<{width}}  {DESCRIPTIONS[name]}" for name in BENCHMARKS]
    lines += ["", "python -m bench NAME --help lists the options of one benchmark."]
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(help_text())
        return 0
    if not argv or argv[0] not in BENCHMARKS:
        print(USAGE, file=sys.stderr)
        if argv:
            print(f"error: no benchmark called {argv[0]!r}", file=sys.stderr)
        return 2
    return BENCHMARKS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
