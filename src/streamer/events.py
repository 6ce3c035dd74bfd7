"""The exchange-neutral events a subscriber receives: trades, and notices of trades that could not
be found, with the fixed bounds of believable trade data.

`TradeEvent` is decoded straight from the exchange's frame bytes (its fields carry the wire names
as aliases), so a trade costs one allocation on the hot path. It is frozen because the same
object is handed to every subscriber, and `gc=False` because it holds no references to containers
that could form a cycle, which keeps the garbage collector away from millions of small objects.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import msgspec

ID_LIMIT = 2**63
"""Exclusive upper bound of a trade id: the largest a PostgreSQL/SQLite BIGINT holds, plus one."""
EARLIEST_S = 1_498_867_200
"""2017-07-01 00:00 UTC, before the exchange's first trade."""
LATEST_S = 4_102_444_800
"""2100-01-01 00:00 UTC: the ceiling when no clock-relative bound is used."""
MILLISECONDS = 1_000
MICROSECONDS = 1_000_000

TradeId = Annotated[int, msgspec.Meta(ge=0, le=ID_LIMIT - 1)]
"""A trade id as a frame may carry it."""
ExchangeTime = Annotated[
    int, msgspec.Meta(ge=EARLIEST_S * MILLISECONDS, le=LATEST_S * MICROSECONDS)
]
"""A time in ms or µs between 2017 and 2100: which unit is the connection's to say."""


class TradeEvent(msgspec.Struct, frozen=True, gc=False):
    """One trade, as the exchange reported it or as it was back-filled from the trade history.

    Times keep the unit of the connection (milliseconds by default, microseconds when the
    connection asks for `timeUnit=MICROSECOND`). `buyer_order_id`/`seller_order_id` are `None` on
    today's stream: the exchange stopped sending them in June 2024. Decoding refuses ids and
    times outside `streamer.events`; constructing one checks nothing.
    """

    event_type: str = msgspec.field(name="e")
    event_time: ExchangeTime = msgspec.field(name="E")
    symbol: str = msgspec.field(name="s")
    trade_id: TradeId = msgspec.field(name="t")
    price: Decimal = msgspec.field(name="p")
    quantity: Decimal = msgspec.field(name="q")
    trade_time: ExchangeTime = msgspec.field(name="T")
    buyer_market_maker: bool = msgspec.field(name="m")
    buyer_order_id: int | None = msgspec.field(default=None, name="b")
    seller_order_id: int | None = msgspec.field(default=None, name="a")
    backfilled: bool = False


class GapNotice(msgspec.Struct, frozen=True, gc=False):
    """Trades `first_missing_id..last_missing_id` (inclusive) of `symbol` could not be delivered."""

    symbol: str
    first_missing_id: int
    last_missing_id: int

    @property
    def missing(self) -> int:
        """How many trades the gap spans."""
        return self.last_missing_id - self.first_missing_id + 1


class Dropped(msgspec.Struct, frozen=True, gc=False):
    """`count` events were lost to this subscription's overflow since its consumer last read.

    A subscription hands it over in place of the events it had to drop, before the events
    that follow, so a consumer that falls behind learns how much it missed instead of
    finding out from a counter it would have to poll.
    """

    count: int


Event = TradeEvent | GapNotice | Dropped
