"""What leaves the process: one JSON document per event, for `/ws/trades` and every broker.

One contract, so a consumer reading a broker and one reading the websocket parse the same
document: `{"kind": "trade", "symbol": ..., "trade_id": ..., "price": "..." ...}`,
`{"kind": "gap", "symbol": ..., "first_missing_id": ..., "last_missing_id": ...}` or
`{"kind": "dropped", "count": n}` (only `/ws/trades` sends the last).

The documents are typed msgspec structs encoded in C: `TradeEvent`'s own field names are the
exchange's one-letter ones (it is decoded straight from frames), so the readable names come from
a document struct of their own rather than from a dict built per trade. `encode_events` encodes a
whole batch once, for every sink and websocket client that sends it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import msgspec

from streamer.events import Dropped, Event, GapNotice, TradeEvent


class TradeDocument(msgspec.Struct, frozen=True, gc=False, tag_field="kind", tag="trade"):
    """A trade as consumers outside the process read it."""

    event_type: str
    event_time: int
    symbol: str
    trade_id: int
    price: Decimal
    quantity: Decimal
    trade_time: int
    buyer_market_maker: bool
    buyer_order_id: int | None
    seller_order_id: int | None
    backfilled: bool


class GapDocument(msgspec.Struct, frozen=True, gc=False, tag_field="kind", tag="gap"):
    """Trades `first_missing_id..last_missing_id` of `symbol` that will never be delivered."""

    symbol: str
    first_missing_id: int
    last_missing_id: int


class DroppedDocument(msgspec.Struct, frozen=True, gc=False, tag_field="kind", tag="dropped"):
    """`count` events this websocket client lost because it read too slowly."""

    count: int


Document = TradeDocument | GapDocument | DroppedDocument

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(dict[str, Any]).decode


def document(event: Event) -> Document:
    """The event's document struct (what `encode_event` writes)."""
    if type(event) is TradeEvent:
        return TradeDocument(
            event.event_type,
            event.event_time,
            event.symbol,
            event.trade_id,
            event.price,
            event.quantity,
            event.trade_time,
            event.buyer_market_maker,
            event.buyer_order_id,
            event.seller_order_id,
            event.backfilled,
        )
    if type(event) is GapNotice:
        return GapDocument(event.symbol, event.first_missing_id, event.last_missing_id)
    if type(event) is Dropped:
        return DroppedDocument(event.count)
    raise TypeError(f"not an event: {event!r}")


def encode_event(event: Event) -> bytes:
    """The event's JSON document."""
    return _encode(document(event))


def encode_events(events: Iterable[Event]) -> list[bytes]:
    """Every event's JSON document, in order: the one encoding a batch gets."""
    return [_encode(document(event)) for event in events]


def _trade(doc: TradeDocument) -> TradeEvent:
    return TradeEvent(
        doc.event_type,
        doc.event_time,
        doc.symbol,
        doc.trade_id,
        doc.price,
        doc.quantity,
        doc.trade_time,
        doc.buyer_market_maker,
        doc.buyer_order_id,
        doc.seller_order_id,
        doc.backfilled,
    )


_decode_documents = msgspec.json.Decoder(TradeDocument | GapDocument).decode


def decode_events(payloads: Iterable[bytes]) -> list[TradeEvent | GapNotice]:
    """The events back from documents this module wrote (what the journal keeps on disk)."""
    events: list[TradeEvent | GapNotice] = []
    for payload in payloads:
        doc = _decode_documents(payload)
        if type(doc) is TradeDocument:
            events.append(_trade(doc))
        else:
            assert isinstance(doc, GapDocument)
            events.append(GapNotice(doc.symbol, doc.first_missing_id, doc.last_missing_id))
    return events


class SharedText:
    """Each recent event's document as text, encoded once however many clients send it.

    Every `/ws/trades` client of a symbol sends the same events: the first to send one encodes
    it, the others find it here. An entry holds its event, so its `id` cannot be reused while
    the entry lives; the oldest entries go past `size`.
    """

    def __init__(self, size: int = 100_000) -> None:
        self._size = size
        self._texts: dict[int, tuple[Event, str]] = {}
        self._order: deque[int] = deque()

    def text(self, event: Event) -> str:
        key = id(event)
        found = self._texts.get(key)
        if found is not None and found[0] is event:
            return found[1]
        text = _encode(document(event)).decode()
        self._texts[key] = (event, text)
        self._order.append(key)
        if len(self._order) > self._size:
            self._texts.pop(self._order.popleft(), None)
        return text


def as_dict(event: Event) -> dict[str, Any]:
    """The event's document as plain data (decimals as strings), as a consumer decodes it."""
    data: dict[str, Any] = msgspec.to_builtins(document(event))
    return data


def decode_event(payload: bytes | str) -> dict[str, Any]:
    """A document read back from a broker, as plain data (for `streamer tail --from`)."""
    return _decode(payload)
