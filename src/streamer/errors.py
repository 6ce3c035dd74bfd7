"""The one exception base a user of `streamer` catches.

Every error the package raises on purpose derives from `StreamerError`, so a trading program can
catch everything streamer-specific in one clause without swallowing unrelated bugs. Each subclass
also keeps the built-in base it had (`ValueError`, `LookupError`, `ConnectionError`, ...), so code
that catches those keeps working.
"""

from __future__ import annotations


class StreamerError(Exception):
    """Base of every error `streamer` raises on purpose."""


class ExchangeError(StreamerError):
    """A request to an exchange failed for good; `str()` says why in one line.

    Each market's REST client raises its own subclass; the engine (back-fills, probes, resumes)
    catches this one, so it needs no market's module.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class HistoryUnavailable(ExchangeError):
    """The exchange's host does not serve the trade history by id (only the latest trades)."""


class StreamingUnavailable(StreamerError, RuntimeError):
    """The dynamic supervisor is restarting after a failure; nothing was changed.

    Here rather than beside start/stop, so the API can answer it (503) without importing the
    service that raises it.
    """
