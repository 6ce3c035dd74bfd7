"""Tests for streamer.events."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from streamer.events import Dropped, GapNotice, TradeEvent
from streamer.wire import as_dict


def test_trade_decodes_from_wire_names_with_exact_decimals() -> None:
    """A trade payload decodes into a TradeEvent whose price and quantity are exact decimals."""
    raw = (
        b'{"e":"trade","E":1700000000001,"s":"BNBBTC","t":5,"p":"0.10000001","q":"3.3",'
        b'"T":1700000000000,"m":false}'
    )
    event = msgspec.json.decode(raw, type=TradeEvent)
    assert event.price == Decimal("0.10000001")
    assert event.quantity == Decimal("3.3")
    assert (event.buyer_order_id, event.seller_order_id, event.backfilled) == (None, None, False)


def test_as_dict_uses_long_names_and_marks_the_kind() -> None:
    """as_dict gives readable field names and says whether the event is a trade or a gap."""
    gap = GapNotice("ETHUSDT", 10, 12)
    assert as_dict(gap) == {
        "symbol": "ETHUSDT",
        "first_missing_id": 10,
        "last_missing_id": 12,
        "kind": "gap",
    }
    assert gap.missing == 3


def test_dropped_as_dict_is_its_kind_and_count() -> None:
    """A Dropped notice becomes {"kind": "dropped", "count": n}."""
    assert as_dict(Dropped(7)) == {"kind": "dropped", "count": 7}
