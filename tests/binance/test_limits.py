"""Tests for streamer.events: the fixed bounds enforced while a frame is decoded."""

from __future__ import annotations

import msgspec
import pytest

from streamer.events import TradeEvent

GOOD = {"e": "trade", "E": 1_700_000_000_001, "s": "ETHUSDT", "t": 5, "p": "1", "q": "1"}


def frame(**fields: object) -> bytes:
    return msgspec.json.encode({**GOOD, "T": 1_700_000_000_000, "m": False, **fields})


def test_trades_of_today_decode_in_either_time_unit() -> None:
    """Millisecond and microsecond times of today both decode."""
    assert msgspec.json.decode(frame(), type=TradeEvent).trade_id == 5
    micro = frame(E=1_700_000_000_000_001, T=1_700_000_000_000_000)
    assert msgspec.json.decode(micro, type=TradeEvent).trade_time == 1_700_000_000_000_000


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"t": -4}, "$.t"),
        ({"t": 2**63}, "$.t"),
        ({"T": 1}, "$.T"),
        ({"E": 5_000_000_000_000_000_000}, "$.E"),
    ],
)
def test_ids_and_times_no_trade_can_have_fail_to_decode(fields: dict[str, int], where: str) -> None:
    """Negative ids, ids of 2^63+, times before 2017 or after 2100 (even in µs) are refused."""
    with pytest.raises(msgspec.ValidationError, match=f"`\\{where}`"):
        msgspec.json.decode(frame(**fields), type=TradeEvent)
