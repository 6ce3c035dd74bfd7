"""Bytes on the wire: websocket frames and Binance's JSON, encoded a chunk at a time.

A server frame is unmasked, so a frame is a header and the payload. A chunk of a recording gets
a frame template once (headers, symbol, price and quantity filled in, `%d` for the event time, id
and trade time); every later loop over the recording is one `template % numbers`, three integers
per trade. That is what lets one connection receive over a million trades a second. The payload
keeps Binance's key order: e, E, s, t, p, q, T, m, M (no b/a since June 2024).
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from decimal import Decimal
from itertools import accumulate, chain, repeat
from operator import add
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import msgspec

if TYPE_CHECKING:
    from streamer.mock_exchange.sources import Trades


TEXT = 0x1
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


def server_shutdown(event_time: int, *, combined: bool) -> bytes:
    """Binance's `serverShutdown` event as a frame (as stream `!serverShutdown` when combined)."""
    event = {"e": "serverShutdown", "E": event_time}
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

    @property
    def size(self) -> int:
        return len(self.blob)

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


@dataclass(frozen=True, slots=True)
class Template:
    """A chunk's frames with `%d` where E, t and T go, and where each frame ends.

    It depends only on the trades' static parts and on the decimal widths of the numbers, so one
    template serves every loop of a recording: a loop costs one `%` over three ints per trade.
    """

    text: bytes
    ends: list[int]

    @property
    def size(self) -> int:
        return len(self.text)


def encode_trades(
    trades: Trades,
    symbol: str,
    stream: str | None,
    *,
    micro: bool,
    templates: LruCache[Template] | None = None,
) -> Encoded:
    """Trade frames for `symbol`; wrapped as `{"stream":..,"data":..}` when `stream` is given."""
    low, high = trades.bounds(micro)
    time_width = len(str(low))
    id_width = len(str(trades.first_id))
    last_id = trades.first_id + len(trades) - 1
    if time_width != len(str(high)) or id_width != len(str(last_id)):
        return _encode_mixed_widths(trades, symbol, stream, trades.numbers(micro))
    key = (symbol, trades.part, stream, time_width, id_width)
    template = templates.get(key) if templates is not None and trades.part is not None else None
    if template is None:
        template = _template(trades, symbol, stream, 2 * time_width + id_width)
        if templates is not None and trades.part is not None:
            templates.put(key, template)
    return Encoded(trades.start, template.text % trades.numbers(micro), template.ends)


def _pieces(trades: Trades, symbol: str, stream: str | None) -> tuple[bytes, list[bytes]]:
    """The payload start (with two `%d`) and each trade's ending after its trade time."""
    wrap = b'{"stream":"%s","data":' % stream.encode() if stream is not None else b""
    close = b"}}" if stream is not None else b"}"
    tails = {True: b',"m":true,"M":true' + close, False: b',"m":false,"M":true' + close}
    start = (wrap + b'{"e":"trade","E":').replace(b"%", b"%%")
    middle = (b',"s":"' + symbol.encode() + b'","t":').replace(b"%", b"%%")
    return start + b"%d" + middle + b"%d", [tails[m] for m in trades.statics.maker]


def _headers(lengths: list[int]) -> list[bytes]:
    if max(lengths) < len(_HEADERS):
        return list(map(_HEADERS.__getitem__, lengths))
    return [frame_header(n) for n in lengths]


def _template(trades: Trades, symbol: str, stream: str | None, digits: int) -> Template:
    head, endings = _pieces(trades, symbol, stream)
    count = len(trades)
    fixed = len(head) - 4 + digits
    mids = trades.statics.mids
    lengths = list(map(add, map(add, map(len, mids), map(len, endings)), repeat(fixed)))
    headers = _headers(lengths)
    columns = (headers, repeat(head, count), mids, repeat(b"%d", count), endings)
    text = b"".join(chain.from_iterable(zip(*columns, strict=False)))
    ends = list(accumulate(map(add, lengths, map(len, headers))))
    return Template(text, ends)


def _encode_mixed_widths(
    trades: Trades, symbol: str, stream: str | None, values: tuple[int, ...]
) -> Encoded:
    """The slow path for the rare chunk whose numbers change width (e.g. ids 9999 to 10000)."""
    head, endings = _pieces(trades, symbol, stream)
    numbers = zip(*[iter(values)] * 3, strict=True)
    frames = [
        frame(head % (event, trade_id) + mid + b"%d" % trade_time + ending)
        for (event, trade_id, trade_time), mid, ending in zip(
            numbers, trades.statics.mids, endings, strict=True
        )
    ]
    return Encoded(trades.start, b"".join(frames), list(accumulate(map(len, frames))))


def rest_trades(trades: Trades, lo: int, hi: int, *, micro: bool) -> list[dict[str, Any]]:
    """Trades [lo, hi) in the shape of GET /api/v3/trades and /api/v3/historicalTrades."""
    rows = []
    trade_times = trades.times(micro).trade
    statics = trades.statics
    for k in range(lo - trades.start, hi - trades.start):
        price, qty = statics.price[k], statics.qty[k]
        time = trade_times[k]
        rows.append(
            {
                "id": trades.first_id + k,
                "price": price.decode(),
                "qty": qty.decode(),
                "quoteQty": _quote(price, qty),
                "time": time,
                "isBuyerMaker": statics.maker[k],
                "isBestMatch": True,
            }
        )
    return rows


def encode_agg_trades(trades: Trades, symbol: str, stream: str | None, *, micro: bool) -> Encoded:
    """aggTrade frames; the mock aggregates nothing, so each trade is its own aggregate (a=f=l).

    Encoded one frame at a time: aggregate streams are for completeness, not for throughput.
    """
    wrap = b'{"stream":"%s","data":' % stream.encode() if stream is not None else b""
    close = b"}}" if stream is not None else b"}"
    payload = (
        wrap.replace(b"%", b"%%")
        + b'{"e":"aggTrade","E":%d,"s":"'
        + symbol.encode().replace(b"%", b"%%")
        + b'","a":%d,"p":"%s","q":"%s","f":%d,"l":%d,"T":%d,"m":%s,"M":true'
        + close
    )
    numbers = trades.numbers(micro)
    statics = trades.statics
    frames = [
        frame(
            payload
            % (
                numbers[3 * k],
                numbers[3 * k + 1],
                statics.price[k],
                statics.qty[k],
                numbers[3 * k + 1],
                numbers[3 * k + 1],
                numbers[3 * k + 2],
                b"true" if statics.maker[k] else b"false",
            )
        )
        for k in range(len(trades))
    ]
    return Encoded(trades.start, b"".join(frames), list(accumulate(map(len, frames))))


def rest_agg_trades(trades: Trades, lo: int, hi: int, *, micro: bool) -> list[dict[str, Any]]:
    """Trades [lo, hi) as GET /api/v3/aggTrades answers them (one trade per aggregate)."""
    trade_times = trades.times(micro).trade
    statics = trades.statics
    return [
        {
            "a": trades.first_id + k,
            "p": statics.price[k].decode(),
            "q": statics.qty[k].decode(),
            "f": trades.first_id + k,
            "l": trades.first_id + k,
            "T": trade_times[k],
            "m": statics.maker[k],
            "M": True,
        }
        for k in range(lo - trades.start, hi - trades.start)
    ]


def _quote(price: bytes, qty: bytes) -> str:
    value = Decimal(price.decode()) * Decimal(qty.decode())
    return f"{value.quantize(Decimal('0.00000001')):f}"


class Sized(Protocol):
    @property
    def size(self) -> int: ...


V = TypeVar("V", bound=Sized)


class LruCache(Generic[V]):
    """Items shared by every connection; the least recently used go past `max_bytes`."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._bytes = 0
        self._items: OrderedDict[Hashable, V] = OrderedDict()

    def get(self, key: Hashable) -> V | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: Hashable, item: V) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self._bytes -= old.size
        self._items[key] = item
        self._bytes += item.size
        while self._bytes > self._max_bytes and len(self._items) > 1:
            _, dropped = self._items.popitem(last=False)
            self._bytes -= dropped.size
