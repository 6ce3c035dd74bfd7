"""Decoding of websocket frames: trades on the fast path, everything else classified apart.

A combined-stream frame is decoded in one pass from the frame bytes into a typed envelope whose
`data` is already a `TradeEvent`; that is the only work a trade costs. When that strict decode
fails, the frame is not a trade and `classify` works out what it is (a reply to a request, a
`serverShutdown`, another event type, or garbage); that slower path only runs for rare frames.
"""

from __future__ import annotations

from typing import Any

import msgspec

from streamer.events import TradeEvent
from streamer.stream.validate import Rejection


class TradeEnvelope(msgspec.Struct, gc=False):
    """A combined-stream frame carrying a trade: `{"stream": "btcusdt@trade", "data": {...}}`.

    The stream name is skipped, not decoded: the trade names its symbol, and skipping saves a
    string allocation per trade.
    """

    data: TradeEvent


class Reply(msgspec.Struct, frozen=True):
    """The answer to a request we sent: `{"result": null, "id": 7}` or `{"error": ..., "id": 7}`."""

    id: int | str | None
    result: Any = None
    error: Any = None


class ServerShutdown(msgspec.Struct, frozen=True):
    """The exchange is about to close the connection and asks for a new one."""


class OtherEvent(msgspec.Struct, frozen=True):
    """A well-formed frame that is not a trade (another stream type, a future event)."""

    stream: str | None
    event_type: str | None


class Malformed(msgspec.Struct, frozen=True):
    """A frame that cannot be understood; `stream` is set when it could still be attributed."""

    reason: str
    stream: str | None = None


class Invalid(msgspec.Struct, frozen=True):
    """A well-formed trade whose id or time is outside what any real trade can have."""

    reason: Rejection
    detail: str
    stream: str | None = None


Control = Reply | ServerShutdown | OtherEvent | Malformed | Invalid

_envelope_decoder = msgspec.json.Decoder(TradeEnvelope)
_trade_decoder = msgspec.json.Decoder(TradeEvent)
_any_decoder = msgspec.json.Decoder()

decode_envelope = _envelope_decoder.decode
"""Frame bytes -> `TradeEnvelope`; raises `msgspec.DecodeError` for anything that is not a trade."""

decode_trade = _trade_decoder.decode
"""Raw-stream (`/ws/<stream>`) frame bytes -> `TradeEvent`; raises `msgspec.DecodeError`."""


def classify(frame: bytes | memoryview) -> Control:
    """Say what a frame that did not decode as a trade is, without ever raising.

    Whatever goes wrong while looking at it (JSON nested beyond the decoder's depth raises
    `RecursionError`) makes the frame malformed: one bad frame must not end the connection
    that carries hundreds of healthy streams.
    """
    try:
        return _classify(frame)
    except Exception as exc:
        return Malformed(f"cannot be read: {type(exc).__name__}: {exc}")


def _classify(frame: bytes | memoryview) -> Control:
    try:
        obj = _any_decoder.decode(frame)
    except msgspec.DecodeError as exc:
        return Malformed(f"not JSON: {exc}")
    if not isinstance(obj, dict):
        return Malformed(f"not a JSON object: {type(obj).__name__}")
    if "id" in obj and ("result" in obj or "error" in obj):
        return Reply(obj["id"], obj.get("result"), obj.get("error"))
    stream = obj.get("stream")
    stream = stream if isinstance(stream, str) else None
    payload = obj.get("data", obj) if stream is not None else obj
    if not isinstance(payload, dict):
        return Malformed("payload is not a JSON object", stream)
    event_type = payload.get("e")
    if event_type == "serverShutdown":
        return ServerShutdown()
    if event_type == "trade":
        try:
            _trade_decoder.decode(msgspec.json.encode(payload))
        except msgspec.ValidationError as exc:
            reason = _out_of_range(str(exc))
            if reason is not None:
                return Invalid(reason, str(exc), stream)
            return Malformed(f"bad trade: {exc}", stream)
        except msgspec.DecodeError as exc:
            return Malformed(f"bad trade: {exc}", stream)
        return Malformed("trade outside a combined-stream envelope", stream)
    if stream is None and event_type is None:
        return Malformed("neither a stream event nor a reply")
    return OtherEvent(stream, event_type if isinstance(event_type, str) else None)


def _out_of_range(message: str) -> Rejection | None:
    """The rejection a decoder's range error stands for (None: a different error)."""
    if ">=" not in message and "<=" not in message:
        return None
    if message.endswith("`$.t`"):
        return Rejection.ID_RANGE
    if message.endswith(("`$.T`", "`$.E`")):
        return Rejection.TIME_RANGE
    return None
