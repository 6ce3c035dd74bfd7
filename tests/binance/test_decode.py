"""Tests for streamer.binance.decode."""

from __future__ import annotations

import logging
from decimal import Decimal

import msgspec
import pytest

from streamer.binance.decode import (
    Invalid,
    Malformed,
    OtherEvent,
    Reply,
    ServerShutdown,
    classify,
    decode_envelope,
    decode_trade,
)
from streamer.logs import RateLimitedLog
from tests.binance.recorded import combined_frame, payload, recorded_rows


def test_recorded_frames_decode_exactly() -> None:
    """Every recorded ADAUSDT row, framed as today's stream, decodes to the same typed values."""
    rows = recorded_rows("ADAUSDT", 5000)
    for row in rows:
        env = decode_envelope(combined_frame(row))
        trade = env.data
        assert (trade.symbol, trade.trade_id, trade.event_time, trade.trade_time) == (
            row[3],
            int(row[4]),
            int(row[2]),
            int(row[9]),
        )
        assert (trade.price, trade.quantity) == (Decimal(row[5]), Decimal(row[6]))
        assert trade.buyer_market_maker is (row[10] == "t")


def test_raw_stream_frame_decodes() -> None:
    """A raw-stream frame (no envelope) decodes with decode_trade."""
    row = recorded_rows("BTCPAX", 1)[0]
    assert decode_trade(msgspec.json.encode(payload(row))).trade_id == int(row[4])


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (b'{"result":null,"id":3}', Reply(3, None, None)),
        (b'{"error":{"code":2,"msg":"x"},"id":4}', Reply(4, None, {"code": 2, "msg": "x"})),
        (b'{"e":"serverShutdown","E":1}', ServerShutdown()),
        (b'{"stream":"x@trade","data":{"e":"serverShutdown","E":1}}', ServerShutdown()),
        (b'{"stream":"x@kline_1m","data":{"e":"kline"}}', OtherEvent("x@kline_1m", "kline")),
    ],
)
def test_control_frames_are_classified(frame: bytes, expected: object) -> None:
    """Replies, shutdown notices and other event types are recognised for what they are."""
    with pytest.raises(msgspec.DecodeError):
        decode_envelope(frame)
    assert classify(frame) == expected


@pytest.mark.parametrize(
    "frame",
    [b"", b"{", b"[1,2]", b'{"foo":1}', b'{"stream":"x@trade","data":{"e":"trade","t":"no"}}'],
)
def test_garbage_is_malformed_never_an_exception(frame: bytes) -> None:
    """Broken frames classify as Malformed instead of raising."""
    assert isinstance(classify(frame), Malformed)


@pytest.mark.parametrize(
    "frame",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"stream":' + b"[" * 100_000 + b"]" * 100_000 + b',"data":{}}',
    ],
)
def test_deeply_nested_json_is_malformed_not_a_recursion_error(frame: bytes) -> None:
    """JSON nested beyond the decoder's depth is a malformed frame; classify does not raise."""
    result = classify(frame)
    assert isinstance(result, Malformed)
    assert "RecursionError" in result.reason


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b'"t":-4,"T":1700000000000', "id_range"), (b'"t":4,"T":17', "time_range")],
)
def test_a_trade_out_of_range_is_invalid_with_its_reason(data: bytes, reason: str) -> None:
    """A trade whose id or time no trade can have is classified Invalid, with its stream."""
    frame = (
        b'{"stream":"ethusdt@trade","data":{"e":"trade","E":1700000000000,"s":"ETHUSDT",'
        + data
        + b',"p":"1","q":"1","m":true}}'
    )
    result = classify(frame)
    assert isinstance(result, Invalid)
    assert (result.reason, result.stream) == (reason, "ethusdt@trade")


def test_malformed_trade_keeps_its_stream() -> None:
    """A broken trade inside an envelope is still attributed to its stream."""
    result = classify(b'{"stream":"ethusdt@trade","data":{"e":"trade","p":1}}')
    assert isinstance(result, Malformed)
    assert result.stream == "ethusdt@trade"


def test_rate_limited_log_holds_back_and_reports_count(caplog: pytest.LogCaptureFixture) -> None:
    """Within one interval only the first line is logged; the next says how many were held."""
    now = [0.0]
    log = RateLimitedLog(logging.getLogger("t"), interval=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, "t"):
        for _ in range(5):
            log.warning("bad %s", "frame")
        now[0] = 11.0
        log.warning("bad %s", "frame")
    assert [r.getMessage() for r in caplog.records] == [
        "bad frame",
        "bad frame (4 similar suppressed)",
    ]
