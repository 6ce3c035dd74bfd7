"""Following the service's `/ws/trades` fan-out from another process."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
from picows import WSError, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from streamer.errors import StreamerError


class TailError(StreamerError, ConnectionError):
    """The service could not be reached, or it closed the stream with a reason."""


class _Listener(WSListener):
    def __init__(self, on_message: Callable[[dict[str, Any]], None]) -> None:
        self._on_message = on_message
        self.close_reason: str | None = None

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is WSMsgType.TEXT:
            self._on_message(msgspec.json.decode(frame.get_payload_as_bytes()))
        elif frame.msg_type is WSMsgType.CLOSE:
            self.close_reason = frame.get_close_message().decode(errors="replace") or None
            transport.send_close(frame.get_close_code())
            transport.disconnect()


async def follow(url: str, on_message: Callable[[dict[str, Any]], None]) -> None:
    """Call `on_message` with every event the service sends until it closes the stream."""
    listener = _Listener(on_message)
    try:
        transport, _ = await ws_connect(lambda: listener, url)
    except (TimeoutError, OSError, WSError) as error:
        raise TailError(f"cannot follow {url}: {error}") from None
    try:
        await transport.wait_disconnected()
    finally:
        transport.disconnect()
    if listener.close_reason:
        raise TailError(listener.close_reason)


def trade_time(value: int) -> str:
    """The exchange's trade time (ms, or µs) as a UTC time of day with milliseconds."""
    seconds = value / (1_000_000 if value > 10**14 else 1_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%H:%M:%S.%f")[:-3]


def format_event(event: dict[str, Any]) -> str:
    """One readable line per event."""
    kind = event.get("kind")
    if kind == "trade":
        side = "sell" if event["buyer_market_maker"] else "buy "
        mark = " (backfilled)" if event.get("backfilled") else ""
        return (
            f"{trade_time(event['trade_time'])} {event['symbol']:<12} #{event['trade_id']:<12} "
            f"{side} {event['quantity']} @ {event['price']}{mark}"
        )
    if kind == "notice":
        return str(event["message"])
    if kind == "gap":
        return (
            f"{event['symbol']:<12} gap: trades {event['first_missing_id']}.."
            f"{event['last_missing_id']} could not be delivered"
        )
    if kind == "dropped":
        return f"(this terminal fell behind: {event['count']} events dropped)"
    return str(event)


def print_event(event: dict[str, Any]) -> None:
    print(format_event(event), flush=True)
