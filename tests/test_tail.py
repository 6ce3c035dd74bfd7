"""How `streamer tail` prints the events it follows."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from streamer.events import GapNotice, TradeEvent
from streamer.tail import format_event
from streamer.wire import as_dict

TRADE = TradeEvent(
    event_type="trade",
    event_time=1559520022520,
    symbol="ADAUSDT",
    trade_id=14364025,
    price=Decimal("0.09643000"),
    quantity=Decimal("1617.50000000"),
    trade_time=1559520022517,
    buyer_market_maker=False,
)


def test_a_trade_is_one_line_with_time_id_side_quantity_and_exact_price() -> None:
    """A trade prints its UTC trade time, symbol, id, side and the exact quantity and price."""
    line = format_event(as_dict(TRADE))

    assert line.split() == [
        "00:00:22.517",
        "ADAUSDT",
        "#14364025",
        "buy",
        "1617.50000000",
        "@",
        "0.09643000",
    ]


def test_microsecond_trade_times_print_the_same_clock_time() -> None:
    """A trade time in µs (connections asking for them) prints the same time of day."""
    line = format_event(as_dict(msgspec.structs.replace(TRADE, trade_time=1559520022517000)))

    assert line.startswith("00:00:22.517 ")


def test_a_not_streaming_notice_is_printed_as_sent() -> None:
    """The service's notice that a symbol is not streaming is shown as its message."""
    event = {"kind": "notice", "symbol": "ETHUSDT", "message": "ETHUSDT is not streaming: ..."}

    assert format_event(event) == "ETHUSDT is not streaming: ..."


def test_a_backfilled_trade_says_so() -> None:
    """A trade recovered from the history is marked as such."""
    line = format_event(as_dict(msgspec.structs.replace(TRADE, backfilled=True)))

    assert line.endswith("(backfilled)")


def test_a_gap_names_the_missing_ids() -> None:
    """A gap notice prints the first and last trade id that could not be delivered."""
    line = format_event(as_dict(GapNotice("ADAUSDT", 10, 12)))

    assert "10..12" in line
    assert "could not be delivered" in line


def test_a_drop_notice_says_how_many_events_were_lost() -> None:
    """When the terminal fell behind, the count of dropped events is printed."""
    assert "7 events dropped" in format_event({"kind": "dropped", "count": 7})
