"""Logging set-up: readable on a terminal, one plain line per record everywhere else."""

from __future__ import annotations

import logging
import sys

from rich.logging import RichHandler

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def configure_logging(level: str = "INFO") -> None:
    """Send every log record of the process to stderr, coloured only when a person is watching.

    The root logger's handlers are replaced, not added to, so that calling this twice (or
    after a library configured logging) never prints a line twice.
    """
    handler: logging.Handler
    if sys.stderr.isatty():
        handler = RichHandler(show_path=False, rich_tracebacks=True)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
