"""Binance's REST request weight, counted per client IP the way the exchange counts it.

Each endpoint costs its documented weight (rest-api.md); the weight an IP used in the current
clock minute is sent back on every answer as `X-MBX-USED-WEIGHT-1M`, and a request that would
go beyond the minute's limit is refused with 429 and a Retry-After until the minute ends. A
refused request is not charged. Pure code with an injected clock, so the window is testable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: The documented weight of each endpoint the mock serves; anything else costs 1.
ENDPOINT_WEIGHTS = {
    "/api/v3/ping": 1,
    "/api/v3/time": 1,
    "/api/v3/exchangeInfo": 20,
    "/api/v3/trades": 25,
    "/api/v3/historicalTrades": 25,
    "/api/v3/aggTrades": 4,
}
DEFAULT_LIMIT = 6000
USED_WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"


def rate_limits(weight_limit: int | None) -> list[dict[str, Any]]:
    """exchangeInfo's `rateLimits` as Binance advertises them today (enums.md)."""
    return [
        {
            "rateLimitType": "REQUEST_WEIGHT",
            "interval": "MINUTE",
            "intervalNum": 1,
            "limit": weight_limit or DEFAULT_LIMIT,
        },
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
        {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
        {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
    ]


@dataclass(frozen=True, slots=True)
class Charge:
    """The weight an IP has used this minute, and whether (and how long) it must wait."""

    used: int
    retry_after: int | None = None

    @property
    def refused(self) -> bool:
        return self.retry_after is not None


class RequestWeights:
    """Weight used per IP in the current minute; `limit=None` counts without refusing."""

    def __init__(self, limit: int | None, clock: Callable[[], float]) -> None:
        self.limit = limit
        self._clock = clock
        self._minute = -1
        self._used: dict[str, int] = {}

    def _roll(self) -> float:
        now = self._clock()
        minute = int(now // 60)
        if minute != self._minute:
            self._minute, self._used = minute, {}
        return now

    def charge(self, client: str, path: str) -> Charge:
        """Count one request of `client` to `path`, or refuse it if it would exceed the limit."""
        now = self._roll()
        used = self._used.get(client, 0)
        weight = ENDPOINT_WEIGHTS.get(path, 1)
        if self.limit is not None and used + weight > self.limit:
            return Charge(used, retry_after=max(1, 60 - int(now % 60)))
        self._used[client] = used + weight
        return Charge(used + weight)

    def used(self, client: str) -> int:
        self._roll()
        return self._used.get(client, 0)
