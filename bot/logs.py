"""Logging: loguru to standard error, human-readable by default or one JSON object per line
(`--log-format json`), tracebacks without variable values (they could hold a token or a
phone number); the standard library's logging (aiogram's) routed here too.

A JSON line has `time` (UTC, ISO 8601), `level`, `message` and `logger` (module:line), and
`platform` and `appeal` where the event has them: taken from loguru's `extra` (a call made
through ``logger.bind(platform=…, appeal=…)``) or else from the message itself, where the
code writes them as ``platform=vk`` and ``appeal №12`` / ``appeal=12`` — one convention the
log calls already follow, so no call had to change. `exception` holds a traceback, if any.
The JSON carries exactly what the text line carries, so what keeps tokens and personal data
out of the text keeps them out of the JSON too (tests/test_secrets_in_logs.py checks both).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from datetime import UTC
from typing import Any, Literal, TextIO

from loguru import logger

FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <7} | {name}:{line} | {message}"
LogFormat = Literal["text", "json"]

_PLATFORM = re.compile(r"\bplatform=([a-z]+)\b")
_APPEAL = re.compile(r"\bappeal[= ]№?(\d+)\b")


class _InterceptHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())


def json_line(record: Any) -> str:
    """One loguru record as one line of JSON (no newline inside: JSON escapes them)."""
    message = str(record["message"])
    extra = record["extra"]
    entry: dict[str, Any] = {
        "time": record["time"].astimezone(UTC).isoformat(timespec="milliseconds"),
        "level": record["level"].name,
        "message": message,
        "logger": f"{record['name']}:{record['line']}",
    }
    platform = extra.get("platform")
    if platform is None and (found := _PLATFORM.search(message)):
        platform = found.group(1)
    if platform is not None:
        entry["platform"] = str(platform)
    appeal = extra.get("appeal")
    if appeal is None and (found := _APPEAL.search(message)):
        appeal = int(found.group(1))
    if appeal is not None:
        entry["appeal"] = appeal
    exception = record["exception"]
    if exception is not None and exception.type is not None:
        entry["exception"] = "".join(
            traceback.format_exception(exception.type, exception.value, exception.traceback)
        ).rstrip()
    return json.dumps(entry, ensure_ascii=False, default=str)


def _json_sink(stream: TextIO) -> Any:
    def write(message: Any) -> None:
        stream.write(json_line(message.record) + "\n")
        stream.flush()

    return write


def setup_logging(
    level: str = "INFO", sink: TextIO | None = None, *, log_format: LogFormat = "text"
) -> None:
    logger.remove()
    stream = sink or sys.stderr
    if log_format == "json":
        logger.add(
            _json_sink(stream),
            level=level.upper(),
            format="{message}",
            backtrace=False,
            diagnose=False,
            catch=True,
        )
    else:
        logger.add(
            stream,
            level=level.upper(),
            format=FORMAT,
            backtrace=False,
            diagnose=False,
        )
    logging.basicConfig(handlers=[_InterceptHandler()], level=logging.WARNING, force=True)
