"""`python -m bench <name> …`: run one benchmark."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence


def _report(argv: Sequence[str]) -> int:
    from bench.report import main

    return main(argv)


BENCHMARKS: dict[str, Callable[[Sequence[str]], int]] = {"report": _report}


def main(argv: Sequence[str]) -> int:
    if not argv or argv[0] not in BENCHMARKS:
        print(f"usage: python -m bench {{{'|'.join(BENCHMARKS)}}} [options]", file=sys.stderr)
        return 2
    return BENCHMARKS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
