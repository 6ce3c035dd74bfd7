"""Logging set-up: one line per event that matters, readable on a terminal or as JSON for shippers.

Libraries log their own routine at INFO (every HTTP request of httpx, every socket of picows,
Alembic's migration context); that drowns the service's own lines, so they are held to WARNING
here. Uvicorn's lines come under `streamer.http`, so an operator filters on one name space.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum

from rich.logging import RichHandler

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

QUIET = ("httpx", "httpcore", "picows", "uvicorn", "asyncio", "aiosqlite")
"""Third-party loggers whose INFO lines are routine, not events: only warnings get through."""

RENAMED = {"uvicorn.error": "streamer.http", "uvicorn": "streamer.http"}

ALEMBIC_NOISE = ("Context impl ", "Will assume ")
"""Alembic's per-connection preamble; its `Running upgrade ...` lines are kept."""


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class _Tidy(logging.Filter):
    """Renames uvicorn's loggers and drops Alembic's preamble, on the handler's way out."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.name = RENAMED.get(record.name, record.name)
        return not (
            record.name.startswith("alembic") and record.getMessage().startswith(ALEMBIC_NOISE)
        )


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, and the
    exception's traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "INFO", log_format: str = LogFormat.TEXT) -> None:
    """Send every log record of the process to stderr: JSON when asked, coloured only when a
    person is watching, plain lines otherwise.

    The root logger's handlers are replaced, not added to, so that calling this twice (or
    after a library configured logging) never prints a line twice.
    """
    handler: logging.Handler
    if LogFormat(log_format) is LogFormat.JSON:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    elif sys.stderr.isatty():
        handler = RichHandler(show_path=False, rich_tracebacks=True)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(_Tidy())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    quiet = logging.NOTSET if root.level <= logging.DEBUG else logging.WARNING
    for name in QUIET:
        logging.getLogger(name).setLevel(quiet)


class RateLimitedLog:
    """Logs at most one line per `interval` seconds and says how many were held back.

    A feed gone bad can send thousands of broken frames a second; the log must stay readable
    and cheap while the counters keep the exact number.
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._next = 0.0
        self._held = 0

    def warning(self, msg: str, *args: object) -> None:
        now = self._clock()
        if now < self._next:
            self._held += 1
            return
        if self._held:
            self._logger.warning(msg + " (%d similar suppressed)", *args, self._held)
        else:
            self._logger.warning(msg, *args)
        self._held = 0
        self._next = now + self._interval
