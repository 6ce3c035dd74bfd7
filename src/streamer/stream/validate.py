"""The one rule for trade data from outside: what a frame or a REST row must be to be believed.

A trade is dropped, and counted under a `Rejection` reason, unless:

- its id is in 0 <= id < 2^63 (what a database BIGINT holds) and, beside the symbol's last
  accepted trade, neither absurdly far ahead (more than `max_id_jump` plus `max_trade_rate` ids
  per second of trade time since that trade) nor absurdly far behind (more than `max_id_jump`);
  a jump that the next frame confirms is believed (see `SymbolChannel._confirms_jump`);
- its trade and event times fall after 2017-07-01 (before the exchange's first trade) and no
  later than `future_tolerance` seconds ahead of the local clock (or 2100-01-01 when that is
  None), in the connection's time unit;
- its price and quantity are finite, positive decimals within 1e-30 .. 1e30 (NaN, Infinity,
  negatives and 1E+999999 are refused).

The decoder of stream frames already refuses ids outside 0..2^63-1 and times outside 2017..2100
(in either unit), in C (`streamer.events`), and reports them here by reason. Ids are
judged against the symbol's own history only on the slow path: a trade whose id is the next one
expected follows an id that was already judged, so the hot path pays for the trade time's
distance to the local clock and the price and quantity comparisons alone, inlined in
`SymbolChannel.on_trade`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING

from streamer.events import EARLIEST_S, ID_LIMIT, LATEST_S, MICROSECONDS, MILLISECONDS

if TYPE_CHECKING:
    from streamer.events import TradeEvent

LOWEST = Decimal("1e-30")
HIGHEST = Decimal("1e30")


class Rejection(StrEnum):
    """Why a trade was dropped; the label of the per-symbol rejection counters."""

    ID_RANGE = "id_range"
    ID_JUMP = "id_jump"
    ID_BEHIND = "id_behind"
    TIME_RANGE = "time_range"
    PRICE = "price"
    QUANTITY = "quantity"


def units_per_second(time_unit: str | None) -> int:
    """The connection's time unit as units per second (`timeUnit=MICROSECOND` gives µs)."""
    if time_unit is not None and time_unit.upper() == "MICROSECOND":
        return MICROSECONDS
    return MILLISECONDS


@dataclass(frozen=True)
class TradeRule:
    """The limits of the rule; one per hub, built from its configuration.

    A symbol with `quarantine_after` rejections within `quarantine_window` seconds is
    quarantined: its data keeps failing, so it is parked rather than believed.
    """

    max_id_jump: int = 10_000_000
    max_trade_rate: float = 100_000.0
    future_tolerance: float | None = 86_400.0
    quarantine_after: int = 20
    quarantine_window: float = 10.0

    def time_bounds(self, now: float, unit: int) -> tuple[int, int]:
        """The accepted trade times (inclusive) at local time `now`, in `unit`s per second."""
        latest = LATEST_S if self.future_tolerance is None else now + self.future_tolerance
        return EARLIEST_S * unit, int(min(latest, LATEST_S) * unit)

    def check_jump(
        self, trade_id: int, trade_time: int, last_id: int, last_time: int | None, unit: int
    ) -> Rejection | None:
        """Judge an id against the symbol's last accepted trade (`last_time` None: unknown)."""
        if trade_id < last_id - self.max_id_jump:
            return Rejection.ID_BEHIND
        elapsed = 0.0 if last_time is None else max(0, trade_time - last_time) / unit
        if trade_id - last_id > self.max_id_jump + self.max_trade_rate * elapsed:
            return Rejection.ID_JUMP
        return None


def check(event: TradeEvent, earliest: int, latest: int) -> Rejection | None:
    """Why a trade fails the history-free part of the rule (None: it passes)."""
    if not 0 <= event.trade_id < ID_LIMIT:
        return Rejection.ID_RANGE
    if not (earliest <= event.trade_time <= latest and earliest <= event.event_time <= latest):
        return Rejection.TIME_RANGE
    if not _decimal_ok(event.price):
        return Rejection.PRICE
    if not _decimal_ok(event.quantity):
        return Rejection.QUANTITY
    return None


def _decimal_ok(value: Decimal) -> bool:
    return value.is_finite() and LOWEST <= value <= HIGHEST
