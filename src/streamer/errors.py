"""The one exception base a user of `streamer` catches.

Every error the package raises on purpose derives from `StreamerError`, so a trading program can
catch everything streamer-specific in one clause without swallowing unrelated bugs. Each subclass
also keeps the built-in base it had (`ValueError`, `LookupError`, `ConnectionError`, ...), so code
that catches those keeps working.
"""

from __future__ import annotations


class StreamerError(Exception):
    """Base of every error `streamer` raises on purpose."""
