"""The fixed bounds of believable trade data, shared by the decoder and the validation rule.

They are constants so that msgspec can enforce them while decoding a frame, in C, at no cost a
benchmark can see; the bounds that depend on the clock or on a symbol's history are applied by
`streamer.binance.validate`.
"""

from __future__ import annotations

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
