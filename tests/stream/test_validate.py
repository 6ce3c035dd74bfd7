"""Tests for streamer.stream.validate: the one rule a trade must pass to be believed."""

from __future__ import annotations

from decimal import Decimal

import pytest

from streamer.events import MICROSECONDS, MILLISECONDS, TradeEvent
from streamer.stream.validate import Rejection, TradeRule, check, units_per_second

NOW = 1_700_000_000.0  # local clock, seconds
T = 1_700_000_000_000  # a trade time at NOW, in ms
BOUNDS = TradeRule().time_bounds(NOW, MILLISECONDS)


def trade(
    trade_id: int = 7, *, time: int = T, price: str = "1.5", quantity: str = "2"
) -> TradeEvent:
    return TradeEvent(
        "trade", time, "ETHUSDT", trade_id, Decimal(price), Decimal(quantity), time, False
    )


def test_a_plausible_trade_passes_both_checks() -> None:
    """A trade of today with a positive finite price and quantity is accepted."""
    assert check(trade(), *BOUNDS) is None


@pytest.mark.parametrize("trade_id", [-1, -4, 2**63, 2**64 - 1])
def test_ids_outside_what_a_bigint_holds_are_refused(trade_id: int) -> None:
    """Negative ids and ids of 2^63 and above are refused."""
    assert check(trade(trade_id), *BOUNDS) is Rejection.ID_RANGE


@pytest.mark.parametrize(
    "time", [0, 1_400_000_000_000, T + 2 * 86_400_000, 250_000_000_000_000_000]
)
def test_times_before_2017_or_far_ahead_of_the_local_clock_are_refused(time: int) -> None:
    """Times before the exchange existed or beyond the future tolerance are refused."""
    assert check(trade(time=time), *BOUNDS) is Rejection.TIME_RANGE


@pytest.mark.parametrize("value", ["NaN", "sNaN", "Infinity", "-Infinity", "-1", "0", "1E+999999"])
def test_prices_and_quantities_must_be_finite_positive_and_bounded(value: str) -> None:
    """NaN, infinities, negatives, zero and huge exponents are refused as price or quantity."""
    assert check(trade(price=value), *BOUNDS) is Rejection.PRICE
    assert check(trade(quantity=value), *BOUNDS) is Rejection.QUANTITY


def test_without_a_future_tolerance_only_the_fixed_ceiling_bounds_times() -> None:
    """Without a tolerance, times days ahead of the local clock pass, but not past 2100."""
    earliest, latest = TradeRule(future_tolerance=None).time_bounds(NOW, MILLISECONDS)
    assert check(trade(time=T + 30 * 86_400_000), earliest, latest) is None
    assert check(trade(time=250_000_000_000_000_000), earliest, latest) is Rejection.TIME_RANGE


def test_microsecond_connections_get_bounds_in_microseconds() -> None:
    """`timeUnit=MICROSECOND` connections judge times in µs."""
    assert units_per_second("MICROSECOND") == MICROSECONDS
    assert units_per_second(None) == MILLISECONDS
    earliest, latest = TradeRule().time_bounds(NOW, MICROSECONDS)
    assert check(trade(time=T * 1000), earliest, latest) is None
    assert check(trade(time=T), earliest, latest) is Rejection.TIME_RANGE


def test_an_absurd_jump_ahead_is_refused_but_an_outage_sized_one_is_not() -> None:
    """A jump to 10^12 is refused; a jump the trade rate explains over the elapsed time is not."""
    rule = TradeRule(max_id_jump=1_000, max_trade_rate=100.0)
    assert rule.check_jump(10**12, T + 1, 5_000, T, MILLISECONDS) is Rejection.ID_JUMP
    assert rule.check_jump(5_000 + 900, T + 1, 5_000, T, MILLISECONDS) is None
    ten_minutes_later = T + 600_000
    assert rule.check_jump(5_000 + 50_000, ten_minutes_later, 5_000, T, MILLISECONDS) is None
    assert rule.check_jump(5_000 + 2_000, T + 1, 5_000, None, MILLISECONDS) is Rejection.ID_JUMP


def test_ids_far_behind_the_position_are_refused_while_near_duplicates_are_not() -> None:
    """An id far below the last one contradicts the position; a replayed recent one does not."""
    rule = TradeRule(max_id_jump=1_000)
    assert rule.check_jump(10, T, 10**12, T, MILLISECONDS) is Rejection.ID_BEHIND
    assert rule.check_jump(10**12 - 5, T, 10**12, T, MILLISECONDS) is None
