"""Pacing without I/O: sliding windows of events and of request weight, and jittered backoff.

Every market adapter paces itself against the exchange's published limits with these, and the
engine paces its back-fills with them, all on an injected clock so each limit is testable.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable

Clock = Callable[[], float]


class SlidingWindow:
    """At most `limit` events in any `period` seconds.

    A sliding window rather than a token bucket refilled at `limit`/s: the exchange counts
    messages per second, and a window never lets `limit + 1` of them fall inside one second,
    whatever the phase of its counting. `margin` absorbs network jitter between both clocks.
    """

    def __init__(self, limit: int, period: float, margin: float = 0.0) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self.limit = limit
        self.period = period + margin
        self._times: deque[float] = deque(maxlen=limit)

    def delay(self, now: float) -> float:
        """Seconds to wait before the next event is allowed (0 when allowed now)."""
        if len(self._times) < self.limit:
            return 0.0
        return max(0.0, self._times[0] + self.period - now)

    def record(self, now: float) -> None:
        """Count one event at `now`."""
        self._times.append(now)


class WeightWindow:
    """At most `limit` units of request weight in any `period` seconds.

    The exchange's REST limit is a weight per minute (6,000, a trade-history page costing 25),
    counted over the whole IP: every request spends its weight now, and the weight comes back
    `period` seconds later.
    """

    def __init__(self, limit: int, period: float = 60.0) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self.limit = limit
        self.period = period
        self.spent = 0
        self._spends: deque[tuple[float, int]] = deque()

    def _expire(self, now: float) -> None:
        spends = self._spends
        while spends and spends[0][0] + self.period <= now:
            self.spent -= spends.popleft()[1]

    def delay(self, now: float, weight: int) -> float:
        """Seconds to wait before `weight` more fits in the window (0 when it fits now)."""
        if weight > self.limit:
            raise ValueError(f"a weight of {weight} can never fit in a limit of {self.limit}")
        self._expire(now)
        excess = self.spent + weight - self.limit
        if excess <= 0:
            return 0.0
        # weight <= limit, so the excess is at most what the window holds: the loop ends on it.
        spends, index = self._spends, 0
        while excess > 0:
            excess -= spends[index][1]
            index += 1
        return spends[index - 1][0] + self.period - now

    def record(self, now: float, weight: int) -> None:
        """Spend `weight` at `now`."""
        self._expire(now)
        self._spends.append((now, weight))
        self.spent += weight


class Backoff:
    """Capped exponential backoff with jitter, for reconnecting forever without a thundering herd.

    The n-th delay is drawn uniformly from [d/2, d] with d = min(cap, base * 2**n), so clients
    that lost the same server spread out and none waits longer than `cap`.
    """

    def __init__(
        self, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None
    ) -> None:
        self.base = base
        self.cap = cap
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * 2.0 ** min(self.failures, 30))
        self.failures += 1
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.failures = 0
