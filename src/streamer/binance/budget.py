"""One REST weight budget and one cool-down for every REST request the process makes.

The exchange counts request weight per IP per clock minute and says how much is used in the
`X-MBX-USED-WEIGHT-1M` header of every answer; past the limit it answers 429 with Retry-After,
and an IP that keeps sending after a 429 is banned (418). Back-fills, probes and the seed all
spend from the same IP, so they spend from one `RestBudget`: each request reserves its weight
before it is sent, the header corrects the count whenever the exchange knows better (other
processes on the same IP spend too), and a 429/418 seen by any request holds every request back
for the time the exchange asked, instead of each of them meeting its own 429.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

USED_WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
DEFAULT_WEIGHT_LIMIT = 6_000
"""The exchange's REQUEST_WEIGHT limit per minute (exchangeInfo `rateLimits`, 2023 on)."""


class RestBudget:
    """The weight used in the current clock minute, and when requests may go out again.

    `limit` is the weight this process allows itself per minute (keep it under the exchange's
    limit to leave room for others on the same IP); `clock` is the wall clock in seconds, since
    the exchange's minutes are clock minutes.
    """

    def __init__(
        self, limit: int = DEFAULT_WEIGHT_LIMIT, clock: Callable[[], float] = time.time
    ) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self.limit = limit
        self._clock = clock
        self._minute = -1
        self._used = 0
        self._cool_until = 0.0
        self._lock = asyncio.Lock()
        self.waits = 0
        self.cooldowns = 0

    @property
    def used(self) -> int:
        """The weight known to be used in the current minute."""
        self._roll(self._clock())
        return self._used

    def _roll(self, now: float) -> None:
        minute = int(now // 60)
        if minute != self._minute:
            self._minute, self._used = minute, 0

    def delay(self, weight: int) -> float:
        """Seconds before `weight` may be spent (0: now)."""
        now = self._clock()
        self._roll(now)
        wait = self._cool_until - now
        if self._used + weight > self.limit:
            wait = max(wait, (self._minute + 1) * 60 - now)
        return max(0.0, wait)

    async def spend(self, weight: int) -> None:
        """Wait until `weight` fits in this minute and no cool-down holds, then reserve it."""
        async with self._lock:
            while (wait := self.delay(weight)) > 0:
                self.waits += 1
                log.info("REST budget: waiting %.1f s before spending %d weight", wait, weight)
                await asyncio.sleep(wait)
            self._used += weight

    def observe(self, status: int, headers: Mapping[str, str], retry_after: float | None) -> None:
        """Learn from an answer: the exchange's count of used weight, and any rate limiting."""
        now = self._clock()
        self._roll(now)
        reported = headers.get(USED_WEIGHT_HEADER)
        if reported is not None and reported.isdigit():
            self._used = max(self._used, int(reported))
        if status in (418, 429):
            default = 300.0 if status == 418 else 60.0
            wait = retry_after if retry_after is not None else default
            self.cooldowns += 1
            self._cool_until = max(self._cool_until, now + wait)
            log.warning("REST budget: HTTP %s, every REST request waits %.0f s", status, wait)
