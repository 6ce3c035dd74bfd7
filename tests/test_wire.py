"""Tests for streamer.wire: the one document every consumer outside the process reads."""

from __future__ import annotations

import json
from decimal import Decimal

import msgspec
import pytest

from streamer.events import Dropped, GapNotice, TradeEvent
from streamer.wire import SharedText, as_dict, decode_events, encode_event, encode_events


def trade(trade_id: int) -> TradeEvent:
    return TradeEvent(
        event_type="trade",
        event_time=1_700_000_000_001,
        symbol="ETHUSDT",
        trade_id=trade_id,
        price=Decimal("1834.10000000"),
        quantity=Decimal("0.00100000"),
        trade_time=1_700_000_000_000,
        buyer_market_maker=True,
    )


def test_a_trade_is_one_document_with_readable_names_and_decimal_strings() -> None:
    """Field names are the readable ones and prices keep every digit, as strings."""
    assert json.loads(encode_event(trade(7))) == {
        "kind": "trade",
        "event_type": "trade",
        "event_time": 1_700_000_000_001,
        "symbol": "ETHUSDT",
        "trade_id": 7,
        "price": "1834.10000000",
        "quantity": "0.00100000",
        "trade_time": 1_700_000_000_000,
        "buyer_market_maker": True,
        "buyer_order_id": None,
        "seller_order_id": None,
        "backfilled": False,
    }


def test_gap_and_dropped_notices_carry_their_kind() -> None:
    """A gap names its ids; a dropped notice its count."""
    assert as_dict(GapNotice("ETHUSDT", 3, 9)) == {
        "kind": "gap",
        "symbol": "ETHUSDT",
        "first_missing_id": 3,
        "last_missing_id": 9,
    }
    assert as_dict(Dropped(4)) == {"kind": "dropped", "count": 4}


def test_documents_decode_back_to_the_same_events() -> None:
    """What the journal keeps on disk comes back as the events that were encoded."""
    events: list[TradeEvent | GapNotice] = [trade(7), GapNotice("ETHUSDT", 8, 9), trade(10)]
    assert decode_events(encode_events(events)) == events


def test_a_document_that_is_not_a_trade_or_a_gap_is_refused() -> None:
    """Decoding is typed: anything else is an error, not a guess."""
    with pytest.raises(msgspec.ValidationError):
        decode_events([b'{"kind": "dropped", "count": 1}'])


def test_shared_text_encodes_an_event_once_for_every_client() -> None:
    """The second client sending an event gets the very text the first one encoded."""
    texts = SharedText()
    event = trade(7)
    first = texts.text(event)
    assert texts.text(event) is first
    assert first == encode_event(event).decode()


def test_shared_text_forgets_the_oldest_past_its_size() -> None:
    """A bounded cache: past `size` events the oldest are encoded again when asked."""
    texts = SharedText(size=2)
    events = [trade(i) for i in range(3)]
    first = texts.text(events[0])
    texts.text(events[1])
    texts.text(events[2])
    again = texts.text(events[0])
    assert again == first
    assert again is not first
