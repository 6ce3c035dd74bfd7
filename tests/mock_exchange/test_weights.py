"""REST request weight per IP and minute, as Binance counts it."""

from __future__ import annotations

from streamer.mock_exchange.weights import RequestWeights, rate_limits


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_each_endpoint_costs_its_documented_weight() -> None:
    """ping 1, exchangeInfo 20, historicalTrades 25, aggTrades 4: the used weight adds up."""
    weights = RequestWeights(6000, Clock(120.0))
    used = [
        weights.charge("1.2.3.4", path).used
        for path in (
            "/api/v3/ping",
            "/api/v3/exchangeInfo",
            "/api/v3/historicalTrades",
            "/api/v3/aggTrades",
        )
    ]
    assert used == [1, 21, 46, 50]


def test_weight_is_counted_per_ip() -> None:
    """Another IP starts from nothing."""
    weights = RequestWeights(6000, Clock(120.0))
    weights.charge("1.2.3.4", "/api/v3/trades")
    assert weights.charge("5.6.7.8", "/api/v3/ping").used == 1
    assert weights.used("1.2.3.4") == 25


def test_beyond_the_limit_is_refused_until_the_minute_ends() -> None:
    """The request that would pass the limit is refused (not charged) with the seconds left."""
    clock = Clock(120.0)
    weights = RequestWeights(50, clock)
    assert not weights.charge("ip", "/api/v3/trades").refused
    assert not weights.charge("ip", "/api/v3/trades").refused
    clock.now = 135.0
    refused = weights.charge("ip", "/api/v3/ping")
    assert refused.refused
    assert refused.used == 50
    assert refused.retry_after == 45
    clock.now = 180.0
    assert weights.charge("ip", "/api/v3/ping").used == 1


def test_no_limit_counts_without_refusing() -> None:
    """With the limit off the weight is still counted (and reported)."""
    weights = RequestWeights(None, Clock(0.0))
    for _ in range(300):
        charge = weights.charge("ip", "/api/v3/historicalTrades")
    assert not charge.refused
    assert charge.used == 7500


def test_rate_limits_advertise_todays_request_weight() -> None:
    """exchangeInfo's rateLimits say 6,000 weight per minute (or the mock's own limit)."""
    assert {
        "rateLimitType": "REQUEST_WEIGHT",
        "interval": "MINUTE",
        "intervalNum": 1,
        "limit": 6000,
    } in rate_limits(6000)
    assert rate_limits(100)[0]["limit"] == 100
