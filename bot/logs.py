"""Log set-up: loguru, one line per event; no variable values in tracebacks (they could hold
a token or a phone number); the standard library's logging (aiogram's) routed here too."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from loguru import logger

FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <7} | {name}:{line} | {message}"


class _InterceptHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())


def setup_logging(level: str = "INFO", sink: TextIO | None = None) -> None:
    logger.remove()
    logger.add(
        sink or sys.stderr,
        level=level.upper(),
        format=FORMAT,
        backtrace=False,
        diagnose=False,
    )
    logging.basicConfig(handlers=[_InterceptHandler()], level=logging.WARNING, force=True)
