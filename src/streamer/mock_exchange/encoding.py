"""Bytes on the wire: websocket frames and Binance's JSON, encoded a chunk at a time.

A server frame is unmasked, so a frame is a header and the payload. A whole chunk of trade frames
is produced by one `bytes % values` over a repeated template, which keeps the per-trade Python work
to a few list comprehensions; that is what lets one connection receive over a million trades a
second. The payload keeps Binance's key order: e, E, s, t, p, q, T, m, M (no b/a since 2024-06).
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import dataclass
from decimal import Decimal
from itertools import accumulate, chain, repeat
from operator import add, floordiv
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from streamer.mock_exchange.sources import Trades


TEXT = 0x1
CLOSE = 0x8
_SHORT = struct.Struct("!BB")
_MEDIUM = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")
_json = msgspec.json.Encoder()


def frame_header(length: int, opcode: int = TEXT) -> bytes:
    """The header of a final, unmasked server frame carrying `length` payload bytes."""
    first = 0x80 | opcode
    if length < 126:
        return _SHORT.pack(first, length)
    if length < 65536:
        return _MEDIUM.pack(first, 126, length)
    return _LONG.pack(first, 127, length)


def frame(payload: bytes, opcode: int = TEXT) -> bytes:
    return frame_header(len(payload), opcode) + payload


def encode_json(value: Any) -> bytes:
    return _json.encode(value)


def server_shutdown(event_time_ms: int, *, combined: bool) -> bytes:
    """Binance's `serverShutdown` event as a frame (as stream `!serverShutdown` when combined)."""
    event = {"e": "serverShutdown", "E": event_time_ms}
    if combined:
        return frame(encode_json({"stream": "!serverShutdown", "data": event}))
    return frame(encode_json(event))


@dataclass(frozen=True, slots=True)
class Encoded:
    """A chunk's trades as consecutive text frames; `ends[k]` is where frame `start + k` ends."""

    start: int
    blob: bytes
    ends: list[int]

    @property
    def end(self) -> int:
        return self.start + len(self.ends)

    def span(self, lo: int, hi: int) -> bytes:
        """The frames of trades [lo, hi) (global indices inside this chunk), cut on boundaries."""
        first = lo - self.start
        begin = self.ends[first - 1] if first else 0
        return self.blob[begin : self.ends[hi - self.start - 1]]

    def one(self, index: int) -> bytes:
        return self.span(index, index + 1)


_HEADERS = [struct.pack("!BB", 0x81, n) for n in range(126)] + [
    struct.pack("!BBH", 0x81, 126, n) for n in range(126, 8192)
]
_PREFIX = b'{"e":"trade","E":%d,"s":"%s","t":%d'


def trade_mid(price: bytes, qty: bytes) -> bytes:
    """The part of a trade payload between its id and its trade time, the same on every loop."""
    return b',"p":"%s","q":"%s","T":' % (price, qty)


def encode_trades(trades: Trades, symbol: str, stream: str | None, *, micro: bool) -> Encoded:
    """Trade frames for `symbol`; wrapped as `{"stream":..,"data":..}` when `stream` is given."""
    wrap = b'{"stream":"%s","data":' % stream.encode() if stream is not None else b""
    close = b"}}" if stream is not None else b"}"
    tails = {True: b',"m":true,"M":true' + close, False: b',"m":false,"M":true' + close}
    head = wrap + _PREFIX.replace(b"%s", symbol.encode())
    count = len(trades)
    if micro:
        event_times, trade_times = trades.event_time_us, trades.trade_time_us
    else:
        event_times = list(map(floordiv, trades.event_time_us, repeat(1000, count)))
        trade_times = list(map(floordiv, trades.trade_time_us, repeat(1000, count)))
    ids = range(trades.first_id, trades.first_id + count)
    ends_with = [tails[m] for m in trades.maker]
    fixed = len(head) - 4 + _digits(event_times) + _digits(ids) + _digits(trade_times)
    lengths = list(map(add, map(len, trades.mids), map(len, ends_with)))
    if fixed < 0:
        numbers = zip(event_times, ids, trade_times, strict=True)
        lengths = [n + len(b"%d%d%d" % t) for n, t in zip(lengths, numbers, strict=True)]
        fixed = len(head) - 4
    lengths = list(map(add, lengths, repeat(fixed, count)))
    if max(lengths) < len(_HEADERS):
        headers = list(map(_HEADERS.__getitem__, lengths))
    else:
        headers = [frame_header(n) for n in lengths]
    template = (b"%s" + head + b"%s%d%s") * count
    columns = (headers, event_times, ids, trades.mids, trade_times, ends_with)
    blob = template % tuple(chain.from_iterable(zip(*columns, strict=True)))
    ends = list(accumulate(map(add, lengths, map(len, headers))))
    return Encoded(trades.start, blob, ends)


def _digits(numbers: list[int] | range) -> int:
    """The decimal width shared by all numbers (monotone runs: first and last tell), else -inf."""
    lo, hi = len(str(min(numbers))), len(str(max(numbers)))
    return lo if lo == hi else -(10**9)


def rest_trades(trades: Trades, lo: int, hi: int, *, micro: bool) -> list[dict[str, Any]]:
    """Trades [lo, hi) in the shape of GET /api/v3/trades and /api/v3/historicalTrades."""
    rows = []
    for k in range(lo - trades.start, hi - trades.start):
        price, qty = trades.price[k], trades.qty[k]
        time = trades.trade_time_us[k]
        rows.append(
            {
                "id": trades.first_id + k,
                "price": price.decode(),
                "qty": qty.decode(),
                "quoteQty": _quote(price, qty),
                "time": time if micro else time // 1000,
                "isBuyerMaker": trades.maker[k],
                "isBestMatch": True,
            }
        )
    return rows


def _quote(price: bytes, qty: bytes) -> str:
    value = Decimal(price.decode()) * Decimal(qty.decode())
    return f"{value.quantize(Decimal('0.00000001')):f}"


class EncodedCache:
    """Encoded chunks shared by every connection, least recently used dropped past `max_bytes`."""

    def __init__(self, max_bytes: int = 256 * 1024 * 1024) -> None:
        self._max_bytes = max_bytes
        self._bytes = 0
        self._items: OrderedDict[tuple[str, int, str | None, bool], Encoded] = OrderedDict()

    def get(self, key: tuple[str, int, str | None, bool]) -> Encoded | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: tuple[str, int, str | None, bool], item: Encoded) -> None:
        self._items[key] = item
        self._bytes += len(item.blob)
        while self._bytes > self._max_bytes and len(self._items) > 1:
            _, dropped = self._items.popitem(last=False)
            self._bytes -= len(dropped.blob)
