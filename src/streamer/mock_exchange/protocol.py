"""The websocket side of Binance's protocol, without I/O: URLs, control messages, replies.

`Session` is one connection's state (its streams and the `combined` property). `handle` turns one
incoming text message into the reply Binance would send, with Binance's error codes: 0 unknown
property, 1 wrong value type, 2 invalid request, 3 invalid JSON. A request must carry `id`
(`null` is allowed, as documented); a SUBSCRIBE naming a malformed stream is refused as a whole.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from streamer.mock_exchange.encoding import encode_json
from streamer.symbols import parse_stream_symbol

METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
_ID = re.compile(r"[A-Za-z0-9\-]{1,36}")
_INT64 = range(-(2**63), 2**63)
#: The per-symbol market streams Binance documents, after the `<symbol>@`.
_KIND = re.compile(
    r"trade|aggTrade|bookTicker|ticker|miniTicker|avgPrice|"
    r"kline_(1s|[135]m|15m|30m|[1246]h|[68]h|12h|[13]d|1w|1M)(@\+08:00)?|"
    r"ticker_(1h|4h|1d)|depth(5|10|20)?(@100ms)?"
)
_MARKET_WIDE = re.compile(r"!(miniTicker|ticker_(1h|4h|1d))@arr")


def parse_stream(name: str) -> tuple[str, str] | None:
    """(symbol, kind) of a well-formed stream name, else None.

    The symbol part is spelled as Binance's stream names spell it: ASCII letters lower-case,
    digits, and non-ASCII letters or digits as they are listed.
    """
    part, _, kind = name.partition("@")
    symbol = parse_stream_symbol(part)
    if symbol is None or not _KIND.fullmatch(kind):
        return None
    return symbol, kind


def valid_stream(name: str) -> bool:
    """A stream name Binance would accept in SUBSCRIBE (the symbol need not be listed)."""
    return parse_stream(name) is not None or _MARKET_WIDE.fullmatch(name) is not None


class UrlError(ValueError):
    """A websocket URL Binance would refuse (answered with HTTP 400 or 404)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Session:
    """One connection's subscriptions, in subscription order, and its `combined` property."""

    combined: bool
    micro: bool = False
    streams: dict[str, None] = field(default_factory=dict)
    max_streams: int | None = 1024


def parse_url(target: str, max_streams: int | None) -> Session:
    """The session a connection to `target` (path and query) starts with."""
    parts = urlsplit(target)
    query = parse_qs(parts.query)
    unit = query.get("timeUnit", ["MILLISECOND"])[-1]
    if unit not in ("MILLISECOND", "millisecond", "MICROSECOND", "microsecond"):
        raise UrlError(400, f"Invalid timeUnit: {unit}")
    micro = unit.upper() == "MICROSECOND"
    if parts.path in ("/ws", "/ws/") or parts.path.startswith("/ws/"):
        names = [unquote(n) for n in parts.path[4:].split("/") if n]
        session = Session(combined=False, micro=micro, max_streams=max_streams)
    elif parts.path in ("/stream", "/stream/"):
        names = [n for n in query.get("streams", [""])[-1].split("/") if n]
        session = Session(combined=True, micro=micro, max_streams=max_streams)
    else:
        raise UrlError(404, f"Unknown path: {parts.path}")
    if max_streams is not None and len(set(names)) > max_streams:
        raise UrlError(400, f"Too many streams: {len(set(names))} (at most {max_streams})")
    session.streams = dict.fromkeys(names)
    return session


@dataclass(frozen=True)
class Reply:
    """What to send back, and how the session's streams changed."""

    payload: bytes
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


def error(code: int, msg: str, request_id: Any = None) -> Reply:
    return Reply(encode_json({"error": {"code": code, "msg": msg}, "id": request_id}))


def handle(session: Session, text: str) -> Reply:
    """Apply one control message to `session` and return Binance's answer to it."""
    try:
        message = json.loads(text)
    except json.JSONDecodeError as exc:
        return error(3, f"Invalid JSON: {exc.msg.lower()} at line {exc.lineno} column {exc.colno}")
    end = f"at line 1 column {len(text)}"
    if not isinstance(message, dict):
        return error(2, f"Invalid request: expected a JSON object {end}")
    if "id" not in message:
        return error(2, f"Invalid request: missing field `id` {end}")
    request_id = message["id"]
    if not _valid_id(request_id):
        return error(2, "Invalid request: request ID must be an unsigned integer")
    if "method" not in message:
        return error(2, f"Invalid request: missing field `method` {end}", request_id)
    method = message["method"]
    if method not in METHODS:
        expected = ", ".join(f"`{m}`" for m in METHODS)
        return error(
            2,
            f"Invalid request: unknown variant `{method}`, expected one of {expected} {end}",
            request_id,
        )
    params = message.get("params", [])
    if not isinstance(params, list):
        return error(
            2, f"Invalid request: invalid type for `params`, expected a sequence {end}", request_id
        )
    if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
        if not all(isinstance(p, str) for p in params):
            return error(2, "Invalid request: stream names must be strings", request_id)
        if method == "SUBSCRIBE" and not all(valid_stream(p) for p in params):
            return error(2, "Invalid request: invalid stream", request_id)
        if method == "SUBSCRIBE":
            return _subscribe(session, params, request_id)
        return _unsubscribe(session, params, request_id)
    if method == "LIST_SUBSCRIPTIONS":
        if params:
            return error(2, "Invalid request: too many parameters", request_id)
        return Reply(encode_json({"result": list(session.streams), "id": request_id}))
    return _property(session, method, params, request_id)


def _valid_id(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value in _INT64
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def _subscribe(session: Session, names: list[str], request_id: Any) -> Reply:
    added = tuple(dict.fromkeys(n for n in names if n not in session.streams))
    limit = session.max_streams
    if limit is not None and len(session.streams) + len(added) > limit:
        return error(
            2, f"Invalid request: too many streams, at most {limit} per connection", request_id
        )
    session.streams.update(dict.fromkeys(added))
    return Reply(encode_json({"result": None, "id": request_id}), added=added)


def _unsubscribe(session: Session, names: list[str], request_id: Any) -> Reply:
    removed = tuple(dict.fromkeys(n for n in names if n in session.streams))
    for name in removed:
        del session.streams[name]
    return Reply(encode_json({"result": None, "id": request_id}), removed=removed)


def _property(session: Session, method: str, params: list[Any], request_id: Any) -> Reply:
    wanted = 2 if method == "SET_PROPERTY" else 1
    if len(params) > wanted:
        return error(2, "Invalid request: too many parameters", request_id)
    if not params or not isinstance(params[0], str):
        return error(2, "Invalid request: property name must be a string", request_id)
    if params[0] != "combined":
        return error(0, "Unknown property", request_id)
    if method == "GET_PROPERTY":
        return Reply(encode_json({"result": session.combined, "id": request_id}))
    if len(params) < wanted or not isinstance(params[1], bool):
        return error(1, "Invalid value type: expected Boolean", request_id)
    session.combined = params[1]
    return Reply(encode_json({"result": None, "id": request_id}))
