"""`--log-format json` (SPEC §17, issue 20): one JSON object per line, with the time, the
level, the message, and the platform and appeal number where the event has them; the
readable format stays the default. Secrets and phones: tests/test_secrets_in_logs.py checks
both formats."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

from bot.logs import setup_logging

REPO = Path(__file__).resolve().parent.parent
DIALOGUE = [
    "Подать обращение",
    "Согласен",
    "Дороги",
    "Сергино",
    "Яма на дороге возле дома культуры",
    "ул. Центральная, 5",
    "Пропустить",
    "Оставить как есть",
    "+7 912 345-67-89",
    "Отправить",
]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    yield
    logger.remove()
    logger.add(sys.stderr)


def demo(*options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "demo", *options],
        input="\n".join(DIALOGUE) + "\n",
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_demo_logs_one_json_object_a_line() -> None:
    result = demo("--log-format", "json", "--log-level", "DEBUG")
    assert result.returncode == 0, result.stderr
    assert "Обращение №1 зарегистрировано" in result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) > 10
    entries = [json.loads(line) for line in lines]  # every line is one object
    for entry in entries:
        assert {"time", "level", "message", "logger"} <= set(entry)
        assert entry["time"].endswith("+00:00")
        assert entry["level"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
    assert any(e.get("appeal") == 1 for e in entries)  # «appeal №1 notified to 1 staff»
    assert any(e.get("platform") == "console" for e in entries)
    assert "345-67-89" not in result.stderr and "9123456789" not in result.stderr  # the phone


def test_the_readable_format_stays_the_default() -> None:
    result = demo("--log-level", "INFO")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines and all(" | " in line and not line.startswith("{") for line in lines)


def test_json_fields_from_bind_and_from_the_message(restore_logging: None) -> None:
    stream = io.StringIO()
    setup_logging("DEBUG", stream, log_format="json")
    logger.bind(platform="tg", appeal=5).info("sent to a resident")
    logger.warning("send failed for good platform=vk appeal №12 outbox=3: VK error 901")
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        logger.exception("delivery to a chat failed platform=ok")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    first, second, third = (json.loads(line) for line in lines)
    assert (first["platform"], first["appeal"], first["level"]) == ("tg", 5, "INFO")
    assert (second["platform"], second["appeal"], second["level"]) == ("vk", 12, "WARNING")
    assert third["platform"] == "ok" and "appeal" not in third
    assert third["exception"].startswith("Traceback")
    assert "ValueError: boom\nsecond line" in third["exception"]  # within one JSON line


def test_log_format_is_refused_where_it_means_nothing() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "demo", "--log-format", "xml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "invalid choice: 'xml'" in result.stderr
