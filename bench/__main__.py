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
}


def main(argv: Sequence[str]) -> int:
    if not argv or argv[0] not in BENCHMARKS:
        print(f"usage: python -m bench {{{'|'.join(BENCHMARKS)}}} [options]", file=sys.stderr)
        return 2
    return BENCHMARKS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
