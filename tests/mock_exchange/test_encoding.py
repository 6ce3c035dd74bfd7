"""Websocket frames and Binance JSON, as the mock puts them on the wire."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streamer.mock_exchange.data import load_tape, scan_trade_files
from streamer.mock_exchange.encoding import (
    Encoded,
    LruCache,
    Template,
    encode_agg_trades,
    encode_trades,
    frame,
    frame_header,
    rest_trades,
    server_shutdown,
)
from streamer.mock_exchange.sources import ReplaySource, WalkSource


def split_frames(blob: bytes) -> list[bytes]:
    """The payloads of consecutive unmasked, final text frames."""
    payloads = []
    at = 0
    while at < len(blob):
        assert blob[at] == 0x81
        size, at = blob[at + 1], at + 2
        if size == 126:
            size, at = int.from_bytes(blob[at : at + 2], "big"), at + 2
        elif size == 127:
            size, at = int.from_bytes(blob[at : at + 8], "big"), at + 8
        payloads.append(blob[at : at + size])
        at += size
    return payloads


def events(encoded: Encoded) -> list[Any]:
    return [json.loads(p) for p in split_frames(encoded.blob)]


@pytest.mark.parametrize(("size", "header"), [(5, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)])
def test_header_length_follows_payload_size(size: int, header: int) -> None:
    """Payloads up to 125 bytes take a 2-byte header, up to 65535 a 4-byte one, then 10 bytes."""
    encoded = frame(b"x" * size)
    assert len(frame_header(size)) == header
    assert split_frames(encoded) == [b"x" * size]


def test_raw_trade_payload_has_todays_binance_fields(tiny_data: Path) -> None:
    """A raw trade event has exactly e, E, s, t, p, q, T, m, M in Binance's order (no b, a)."""
    source = ReplaySource(load_tape("BNBBTC", scan_trade_files(tiny_data)["BNBBTC"]))
    first = split_frames(encode_trades(source.chunk(0), "BNBBTC", None, micro=False).blob)[0]
    assert first == (
        b'{"e":"trade","E":1559520000003,"s":"BNBBTC","t":100,"p":"0.0100","q":"1.5",'
        b'"T":1559520000000,"m":true,"M":true}'
    )


def test_combined_frames_wrap_the_payload(tiny_data: Path) -> None:
    """Combined-stream frames are `{"stream": name, "data": payload}`."""
    source = ReplaySource(load_tape("BNBBTC", scan_trade_files(tiny_data)["BNBBTC"]))
    decoded = events(encode_trades(source.chunk(0), "BNBBTC", "bnbbtc@trade", micro=False))
    assert [e["stream"] for e in decoded] == ["bnbbtc@trade"] * 10
    assert [e["data"]["t"] for e in decoded] == list(range(100, 110))
    assert decoded[1]["data"]["m"] is False


def test_microsecond_times(tiny_data: Path) -> None:
    """With `timeUnit=MICROSECOND` the E and T fields are microseconds."""
    source = ReplaySource(load_tape("BNBBTC", scan_trade_files(tiny_data)["BNBBTC"]))
    decoded = events(encode_trades(source.chunk(0), "BNBBTC", None, micro=True))
    assert decoded[0]["T"] == 1_559_520_000_000_000
    assert decoded[0]["E"] == 1_559_520_000_003_000


def test_template_reuse_gives_the_same_frames_as_fresh_encoding(tiny_data: Path) -> None:
    """A later loop encoded from a cached template equals the same loop encoded from scratch."""
    source = ReplaySource(load_tape("BNBBTC", scan_trade_files(tiny_data)["BNBBTC"]))
    templates: LruCache[Template] = LruCache(10**6)
    encode_trades(source.chunk(0), "BNBBTC", "bnbbtc@trade", micro=False, templates=templates)
    cached = encode_trades(
        source.chunk(3), "BNBBTC", "bnbbtc@trade", micro=False, templates=templates
    )
    fresh = encode_trades(source.chunk(3), "BNBBTC", "bnbbtc@trade", micro=False)
    assert cached.blob == fresh.blob
    assert cached.ends == fresh.ends
    assert events(cached)[0]["data"]["t"] == 130


def test_numbers_changing_width_inside_a_chunk() -> None:
    """A chunk whose ids grow a digit (999 to 1000) still frames every trade correctly."""
    source = WalkSource("LTCBTC", seed=0, rate=1.0, start_us=0)
    chunk = source.chunk(source.chunk_of(998))
    assert chunk.first_id < 1000 < chunk.first_id + len(chunk)
    encoded = encode_trades(chunk, "LTCBTC", None, micro=False)
    decoded = events(encoded)
    assert [e["t"] for e in decoded] == list(range(chunk.first_id, chunk.first_id + len(chunk)))
    assert len(encoded.blob) == encoded.ends[-1]


def test_span_cuts_on_frame_boundaries(tiny_data: Path) -> None:
    """`span(lo, hi)` is exactly the frames of trades lo..hi-1."""
    source = ReplaySource(load_tape("BNBBTC", scan_trade_files(tiny_data)["BNBBTC"]))
    encoded = encode_trades(source.chunk(1), "BNBBTC", None, micro=False)
    decoded = [json.loads(p) for p in split_frames(encoded.span(13, 16))]
    assert [e["t"] for e in decoded] == [113, 114, 115]
    assert json.loads(split_frames(encoded.one(19))[0])["t"] == 119


def test_aggregate_trade_payload(tiny_data: Path) -> None:
    """An aggTrade event has Binance's fields, each trade being its own aggregate."""
    source = ReplaySource(load_tape("BNBBTC", scan_trade_files(tiny_data)["BNBBTC"]))
    encoded = encode_agg_trades(source.chunk(0), "BNBBTC", "bnbbtc@aggTrade", micro=False)
    first = split_frames(encoded.blob)[0]
    assert first == (
        b'{"stream":"bnbbtc@aggTrade","data":{"e":"aggTrade","E":1559520000003,"s":"BNBBTC",'
        b'"a":100,"p":"0.0100","q":"1.5","f":100,"l":100,"T":1559520000000,"m":true,"M":true}}'
    )
    assert len(encoded.ends) == 10


def test_server_shutdown_event_shapes() -> None:
    """serverShutdown is a bare event on raw streams and stream `!serverShutdown` on combined."""
    raw = json.loads(split_frames(server_shutdown(5, combined=False))[0])
    wrapped = json.loads(split_frames(server_shutdown(5, combined=True))[0])
    assert raw == {"e": "serverShutdown", "E": 5}
    assert wrapped == {"stream": "!serverShutdown", "data": {"e": "serverShutdown", "E": 5}}


def test_rest_trade_shape(tiny_data: Path) -> None:
    """History rows carry id, price, qty, quoteQty (price x qty), time and the two flags."""
    source = ReplaySource(load_tape("BNBBTC", scan_trade_files(tiny_data)["BNBBTC"]))
    row = rest_trades(source.chunk(0), 0, 1, micro=False)[0]
    assert row == {
        "id": 100,
        "price": "0.0100",
        "qty": "1.5",
        "quoteQty": "0.01500000",
        "time": 1559520000000,
        "isBuyerMaker": True,
        "isBestMatch": True,
    }


def test_lru_cache_drops_the_least_recently_used() -> None:
    """Past its byte budget the cache forgets what was used longest ago."""
    cache: LruCache[Template] = LruCache(10)
    cache.put("a", Template(b"12345", []))
    cache.put("b", Template(b"12345", []))
    assert cache.get("a") is not None
    cache.put("c", Template(b"12345", []))
    assert cache.get("b") is None
    assert cache.get("a") is not None
    assert cache.get("c") is not None
