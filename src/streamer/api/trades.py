"""`GET /ws/trades?symbols=A,B`: live events as JSON text frames, for any other process.

Each client reads its own bounded subscription, so a slow client only ever delays itself: when
it falls behind, its oldest events are dropped and the subscription's `dropped` notice, sent in
their place, tells it how many.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import msgspec
from fastapi import WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from streamer.api.metrics import SocketClients
from streamer.binance.events import as_dict
from streamer.db import DatabaseError, UnknownSymbol
from streamer.pubsub import Overflow, Subscription, topic
from streamer.symbols import InvalidSymbol, normalize_symbol

if TYPE_CHECKING:
    from streamer.app import Service

CLIENT_QUEUE = 10_000
POLICY_VIOLATION = 1008

_encode = msgspec.json.Encoder().encode


def parse_symbols(raw: str | None) -> list[str] | None:
    """`"ethusdt, BTCUSDT"` -> `["ETHUSDT", "BTCUSDT"]`; nothing or empty means every symbol."""
    if raw is None or not raw.strip():
        return None
    return [normalize_symbol(part) for part in raw.split(",") if part.strip()]


async def _forward(socket: WebSocket, sub: Subscription) -> None:
    """Send every event, the subscription's own `dropped` notices included, in order."""
    while batch := await sub.get_batch(1000):
        for event in batch:
            await socket.send_text(_encode(as_dict(event)).decode())


async def _until_disconnect(socket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await socket.receive_text()


async def _idle_notices(service: Service, symbols: list[str]) -> list[dict[str, str]]:
    """A notice for each symbol that is known but not streaming, sent before anything else, so
    a client learns at once why no trades come; an unknown symbol raises `UnknownSymbol`."""
    notices = []
    for symbol in symbols:
        if service.registry.lookup(symbol) is not None:
            continue
        try:
            await service.repository.get(symbol)
        except UnknownSymbol:
            raise
        except DatabaseError:
            pass  # the database is down: the symbol may well exist, so say only what is known
        notices.append(
            {
                "kind": "notice",
                "symbol": symbol,
                "message": f"{symbol} is not streaming: start it with `streamer start {symbol}`",
            }
        )
    return notices


def trades_socket(
    service: Service, clients: SocketClients
) -> Callable[[WebSocket], Awaitable[None]]:
    async def endpoint(socket: WebSocket) -> None:
        await socket.accept()
        clients.accepted += 1
        clients.open += 1
        try:
            await _serve(socket)
        finally:
            clients.open -= 1

    async def _serve(socket: WebSocket) -> None:
        try:
            symbols = parse_symbols(socket.query_params.get("symbols"))
        except InvalidSymbol as error:
            # Accepted first: a refused handshake could not carry the reason to the client.
            await socket.close(code=POLICY_VIOLATION, reason=str(error))
            return
        topics = None if symbols is None else [topic(s) for s in symbols]
        try:
            for notice in await _idle_notices(service, symbols or []):
                await socket.send_text(_encode(notice).decode())
        except UnknownSymbol as error:
            reason = f"unknown symbol {error.symbol}: not in the settings (see `streamer seed`)"
            await socket.close(code=POLICY_VIOLATION, reason=reason)
            return
        with service.pubsub.subscribe(
            topics, maxlen=CLIENT_QUEUE, overflow=Overflow.DROP_OLDEST
        ) as sub:
            forward = asyncio.ensure_future(_forward(socket, sub))
            listen = asyncio.ensure_future(_until_disconnect(socket))
            try:
                done, _ = await asyncio.wait({forward, listen}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (forward, listen):
                    task.cancel()
                await asyncio.gather(forward, listen, return_exceptions=True)
        if listen not in done and socket.application_state is WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError, OSError):
                await socket.close()

    return endpoint
