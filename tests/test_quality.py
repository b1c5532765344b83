"""Lint, types and layering are part of the test suite: ruff, mypy (strict on handlers/ and
storage/) and the import-linter contract bot -> handlers -> storage (SPEC §2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize(
    "command",
    [
        ("ruff", "check", "."),
        ("ruff", "format", "--check", "."),
        ("mypy",),
        ("lint-imports",),
    ],
    ids=["ruff-check", "ruff-format", "mypy", "import-linter"],
)
def test_tool_is_clean(command: tuple[str, ...]) -> None:
    result = run(str(BIN / command[0]), *command[1:])
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_messenger_library_in_handlers_or_storage() -> None:
    """A plain-text check beside import-linter, which sees only imports it can resolve."""
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for package in ("handlers", "storage")
        for path in (ROOT / package).rglob("*.py")
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1)
        if line.lstrip().startswith(("import ", "from "))
        and any(lib in line.split("#")[0] for lib in ("vkbottle", "aiogram", "aiohttp"))
    ]
    assert offenders == []
