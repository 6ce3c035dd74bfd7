"""What leaves the process: one JSON document per event, for `/ws/trades` and every broker.

One encoder, so a consumer reading a broker and one reading the websocket parse the same
document: `{"kind": "trade", "symbol": ..., "trade_id": ..., "price": "..." ...}` or
`{"kind": "gap", "symbol": ..., "first_missing_id": ..., "last_missing_id": ...}`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from streamer.binance.events import Event, as_dict

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(dict[str, Any]).decode


def encode_event(event: Event) -> bytes:
    """The event's JSON document (`/ws/trades` also sends `{"kind": "dropped", "count": n}`)."""
    return _encode(as_dict(event))


def decode_event(payload: bytes | str) -> dict[str, Any]:
    """A document read back from a broker (for `streamer tail --from`)."""
    return _decode(payload)
