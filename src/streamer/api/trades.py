"""`GET /ws/trades?symbols=A,B[&after=A:ID,B:ID]`: live events as JSON text frames, for any other
process; `after` resumes a client where it left off (see `resume`).

Each client reads its own bounded subscription, so a slow client only ever delays itself: when
it falls behind, its oldest events are dropped and the subscription's `dropped` notice, sent in
their place, tells it how many. A slow client is never cut for being slow (the server's pings
wait for their pong as long as the client keeps reading); only a client that reads nothing at
all for `STALL_SECONDS` is closed, with the reason. The handshake follows the API's rules
(`security.websocket_refusal`), every symbol must be in the settings, and at most `MAX_CLIENTS`
clients are served at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import msgspec
from fastapi import WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from streamer.api.metrics import SocketClients
from streamer.api.resume import InvalidResume, SentFilter, catch_up, parse_after
from streamer.api.security import websocket_refusal
from streamer.db import DatabaseError, Status, UnknownSymbol
from streamer.stream.pubsub import Overflow, Subscription, topic
from streamer.symbols import InvalidSymbol, normalize_symbol
from streamer.wire import SharedText

if TYPE_CHECKING:
    from streamer.api.view import ServiceView

log = logging.getLogger(__name__)
CLIENT_QUEUE = 10_000
MAX_CLIENTS = 256
STALL_SECONDS = 60.0
POLICY_VIOLATION = 1008
INTERNAL_ERROR = 1011
TRY_AGAIN_LATER = 1013

_encode = msgspec.json.Encoder().encode


class ClientStalled(Exception):
    """The client has not taken a single byte for `STALL_SECONDS`."""


def parse_symbols(raw: str | None) -> list[str] | None:
    """`"ethusdt, BTC/USDT"` -> `["ETHUSDT", "BTCUSDT"]`; nothing or empty means every symbol."""
    if raw is None or not raw.strip():
        return None
    return list(dict.fromkeys(normalize_symbol(part) for part in raw.split(",") if part.strip()))


class _Sending:
    """When the send in progress began (None between sends): the stall watch reads it."""

    since: float | None = None


async def _forward(
    socket: WebSocket, sub: Subscription, sending: _Sending, sent: SentFilter, texts: SharedText
) -> None:
    """Send every event, the subscription's own `dropped` notices included, in order; each
    event's text is encoded once for every client that sends it."""
    clock = asyncio.get_running_loop().time
    text = texts.text
    while batch := await sub.get_batch(1000):
        for event in batch:
            if not sent.fresh(event):
                continue
            sending.since = clock()
            await socket.send_text(text(event))
            sending.since = None


async def _watch_stall(sending: _Sending, stall_seconds: float) -> None:
    """Raise `ClientStalled` once one send has waited `stall_seconds` for the client to read.

    A watch beside the sends, not a timeout around each: the hot path stays one send per event.
    """
    clock = asyncio.get_running_loop().time
    while True:
        await asyncio.sleep(stall_seconds / 4)
        since = sending.since
        if since is not None and clock() - since >= stall_seconds:
            raise ClientStalled


async def _until_disconnect(socket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await socket.receive_text()


async def _idle_notices(service: ServiceView, symbols: list[str]) -> list[dict[str, str]]:
    """A notice for each symbol that is switched off, sent before anything else, so a client
    learns at once why no trades come; an unknown symbol raises `UnknownSymbol`. A symbol that
    is on but has no worker yet (autostart, a restart) is about to stream: no notice."""
    notices = []
    for symbol in symbols:
        if service.registry.lookup(symbol) is not None:
            continue
        try:
            setting = await service.repository.get(symbol)
        except UnknownSymbol:
            raise
        except DatabaseError:
            continue  # the database is down: whether the symbol is on cannot be told
        if setting.status is Status.ON:
            continue
        notices.append(
            {
                "kind": "notice",
                "symbol": symbol,
                "message": f"{symbol} is not streaming: start it with `streamer start {symbol}`",
            }
        )
    return notices


def trades_socket(
    service: ServiceView, clients: SocketClients
) -> Callable[[WebSocket], Awaitable[None]]:
    async def endpoint(socket: WebSocket) -> None:
        refusal = websocket_refusal(
            socket.headers, token=service.token, bind_host=service.config.host
        )
        # Accepted first: a refused handshake could not carry the reason to the client.
        await socket.accept()
        if refusal is not None:
            await socket.close(code=POLICY_VIOLATION, reason=refusal)
            return
        if clients.open >= MAX_CLIENTS:
            reason = f"too many /ws/trades clients (at most {MAX_CLIENTS}); try again later"
            await socket.close(code=TRY_AGAIN_LATER, reason=reason)
            return
        clients.accepted += 1
        clients.open += 1
        try:
            await _serve(service, socket, clients.texts)
        finally:
            clients.open -= 1

    return endpoint


async def _serve(service: ServiceView, socket: WebSocket, texts: SharedText) -> None:
    try:
        symbols = parse_symbols(socket.query_params.get("symbols"))
        after = parse_after(socket.query_params.get("after"))
        notices = await _idle_notices(service, symbols or [])
    except (InvalidSymbol, InvalidResume) as error:
        await socket.close(code=POLICY_VIOLATION, reason=str(error)[:120])
        return
    except UnknownSymbol as error:
        reason = f"unknown symbol {error.symbol}: not in the settings (see `streamer seed`)"
        await socket.close(code=POLICY_VIOLATION, reason=reason[:120])
        return
    for notice in notices:
        await socket.send_text(_encode(notice).decode())
    topics = None if symbols is None else [topic(s) for s in symbols]
    reason = ""
    subscription = service.pubsub.subscribe(
        topics, maxlen=CLIENT_QUEUE, overflow=Overflow.DROP_OLDEST
    )
    sending = _Sending()
    with subscription as sub:
        caught_up = await catch_up(service, after)
        for event in caught_up:
            await socket.send_text(texts.text(event))
        sent = SentFilter(after, caught_up)
        forward = asyncio.ensure_future(_forward(socket, sub, sending, sent, texts))
        listen = asyncio.ensure_future(_until_disconnect(socket))
        watch = asyncio.ensure_future(_watch_stall(sending, STALL_SECONDS))
        tasks = {forward, listen, watch}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if watch in done and isinstance(watch.exception(), ClientStalled):
            reason = f"client stopped reading for {STALL_SECONDS:g} s"
            log.warning("/ws/trades: closing a client that %s", reason.removeprefix("client "))
    if listen not in done and socket.application_state is WebSocketState.CONNECTED:
        # A client that stopped reading may never take the close frame: do not wait for it.
        with contextlib.suppress(RuntimeError, OSError, TimeoutError):
            code = POLICY_VIOLATION if reason else 1000
            await asyncio.wait_for(socket.close(code=code, reason=reason), 1.0)
