"""Restart accounting: when a supervisor must stop restarting and fail (OTP's intensity/period).

Pure code with an injected clock, so the rule can be tested exactly and without an event loop.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class RestartIntensity:
    """Allows at most `max_restarts` restarts within any `max_seconds` window.

    As in OTP, each restart is recorded with the time it happens; restarts older than the window
    no longer count, and the restart that makes the count exceed `max_restarts` is refused.
    `max_restarts=0` therefore refuses the first restart.
    """

    __slots__ = ("_clock", "_times", "max_restarts", "max_seconds")

    def __init__(
        self,
        max_restarts: int,
        max_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_restarts < 0:
            raise ValueError(f"max_restarts must be >= 0, got {max_restarts}")
        if max_seconds <= 0:
            raise ValueError(f"max_seconds must be > 0, got {max_seconds}")
        self.max_restarts = max_restarts
        self.max_seconds = max_seconds
        self._clock = clock
        self._times: deque[float] = deque()

    def add_restart(self) -> bool:
        """Record a restart now; False means the limit is exceeded and the caller must fail."""
        now = self._clock()
        threshold = now - self.max_seconds
        while self._times and self._times[0] < threshold:
            self._times.popleft()
        self._times.append(now)
        return len(self._times) <= self.max_restarts

    def recent(self) -> int:
        """How many recorded restarts still fall within the window."""
        threshold = self._clock() - self.max_seconds
        return sum(1 for t in self._times if t >= threshold)
