"""The mock exchange server: REST, websocket streams and the admin endpoint on one port.

Built on the websockets library's asyncio server: its `process_request` hook answers plain HTTP
(REST and admin, and may wait, which the slow-REST fault needs) and refuses upgrades the way
Binance does; everything else is a websocket connection fed by `MockConnection`.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
import time
from collections import defaultdict, deque
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from streamer.mock_exchange.config import MockConfig
from streamer.mock_exchange.connection import INTERNAL_ERROR, MockConnection
from streamer.mock_exchange.encoding import encode_json
from streamer.mock_exchange.exchange import Exchange
from streamer.mock_exchange.faults import FaultError, Faults, Refusal
from streamer.mock_exchange.http import KeepAliveHttp, served_by
from streamer.mock_exchange.protocol import UrlError, handle, parse_url
from streamer.mock_exchange.rest import RestApi
from streamer.mock_exchange.weights import USED_WEIGHT_HEADER, RequestWeights

log = logging.getLogger(__name__)
ADMIN = "/_mock/"
_WRITE_LIMIT = 2**20
_JSON = ("Content-Type", "application/json;charset=UTF-8")


def _response(status: int, body: bytes, headers: list[tuple[str, str]] | None = None) -> Response:
    fields = Headers(headers or [_JSON])
    fields["Content-Length"] = str(len(body))
    return Response(status, http.HTTPStatus(status).phrase, fields, body)


def _json(status: int, value: Any, *extra: tuple[str, str]) -> Response:
    return _response(status, encode_json(value), [_JSON, *extra])


def _wrong_method(allowed: str) -> Response:
    return _json(405, {"error": f"use {allowed}"}, ("Allow", allowed))


class MockExchange:
    """A local Binance spot market-data server; use as `async with MockExchange(config) as mock`."""

    def __init__(self, config: MockConfig | None = None) -> None:
        self.config = config or MockConfig()
        self.exchange = Exchange(self.config)
        self.rest = RestApi(self.exchange)
        self.weights = RequestWeights(self.config.limits.request_weight, self.exchange.wall_clock)
        self.connections: dict[int, MockConnection] = {}
        self.plain: set[KeepAliveHttp] = set()
        self.faults = Faults(self.exchange, lambda: list(self.connections.values()))
        self.port = self.config.port
        self._server: Server | None = None
        self._attempts: defaultdict[str, deque[float]] = defaultdict(deque)
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()

    @property
    def rest_url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.config.host}:{self.port}"

    async def __aenter__(self) -> MockExchange:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Listen on the configured port (0 picks a free one, then `port` says which)."""
        self._server = await serve(
            self._handler,
            self.config.host,
            self.port,
            process_request=self._process_request,
            create_connection=served_by(MockConnection, self),
            open_timeout=None,  # a keep-alive REST connection may never upgrade
            compression=None,
            ping_interval=None,
            close_timeout=2,
            max_size=2**20,
            write_limit=_WRITE_LIMIT,
            logger=logging.getLogger("streamer.mock_exchange.websockets"),
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def preload(self) -> None:
        """Read every recording now (in a thread) so that no first subscriber waits for one."""
        for symbol in self.exchange.files:
            await self.exchange.load(symbol)

    async def stop(self) -> None:
        """Close every connection (1001 going away) and stop listening."""
        self._stopping.set()
        for connection in list(self.connections.values()):
            connection.cancel_tasks()
        for plain in list(self.plain):
            plain.transport.abort()
        server, self._server = self._server, None
        if server is not None:
            server.close(close_connections=True)
            await server.wait_closed()
        for connection in list(self.connections.values()):
            connection.transport.abort()
        self._stopped.set()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    async def answer(self, connection: KeepAliveHttp, request: Request) -> Response | None:
        """A plain HTTP request: the admin endpoint, REST, or a refusal; None cuts the connection.

        The admin endpoint answers even while every other request is refused, so whatever a
        switch turns on can be turned off again.
        """
        parts = urlsplit(request.path)
        if parts.path.startswith(ADMIN):
            name = parts.path[len(ADMIN) :]
            return await self._admin(request.method, name, parse_qs(parts.query))
        if self.faults.refusing_tcp:
            return None
        client = _client(connection)
        if self.faults.refusal is not None:
            return self._refused(self.faults.refusal, client)
        if parts.path.startswith("/api/"):
            if request.method != "GET":
                return _wrong_method("GET")
            return await self._rest(client, parts.path, parse_qs(parts.query), request.headers)
        if parts.path in ("/ws", "/stream") or parts.path.startswith("/ws/"):
            return _json(426, {"code": -1, "msg": "a websocket upgrade is required"})
        return _response(404, b"", [("Content-Type", "text/plain")])

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        """Answers refused or misdirected upgrades; None lets an upgrade proceed."""
        assert isinstance(connection, MockConnection)
        path = urlsplit(request.path).path
        if self.faults.refusing_tcp:
            connection.transport.abort()
            return _response(503, b"")
        client = _client(connection)
        if self.faults.refusal is not None:
            return self._refused(self.faults.refusal, client)
        if path.startswith((ADMIN, "/api/")):
            return _json(400, {"code": -1, "msg": f"{path} is not a websocket endpoint"})
        retry = self._attempt(client)
        if retry is not None:
            return self._refused(Refusal(429, retry), client)
        try:
            connection.session = parse_url(request.path, self.config.limits.max_streams)
        except UrlError as exc:
            return _json(exc.status, {"code": -1100, "msg": str(exc)})
        connection.limits = self.config.limits
        connection.exchange = self.exchange
        return None

    def _refused(self, refusal: Refusal, client: str) -> Response:
        """Binance's answer to a client over its limits: 429, or 418 once it is banned."""
        until = self.exchange.now_ms() + refusal.retry_after * 1000
        if refusal.status == 418:
            msg = f"Way too many requests; IP({client}) banned until {until}."
        else:
            msg = f"Too many requests; IP({client}) may retry after {refusal.retry_after} s."
        return _json(
            refusal.status,
            {"code": -1003, "msg": msg},
            ("Retry-After", str(refusal.retry_after)),
            (USED_WEIGHT_HEADER, str(self.weights.used(client))),
        )

    async def _rest(
        self, client: str, path: str, query: dict[str, list[str]], headers: Headers
    ) -> Response:
        charge = self.weights.charge(client, path)
        used = (USED_WEIGHT_HEADER, str(charge.used))
        if charge.retry_after is not None:
            limit = self.weights.limit
            msg = (
                f"Too much request weight used; current limit is {limit} request weight per "
                "1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API."
            )
            return _json(
                429, {"code": -1003, "msg": msg}, ("Retry-After", str(charge.retry_after)), used
            )
        if self.faults.rest_delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.faults.rest_delay)
        symbol = query.get("symbol", [""])[-1]
        if symbol in self.exchange.files:
            await self.exchange.load(symbol)
        lowered = {name.lower(): value for name, value in headers.raw_items()}
        reply = self.rest.handle(path, query, lowered)
        return _response(reply.status, reply.body, [*reply.headers, used])

    def _attempt(self, client: str) -> int | None:
        """Counts a connection attempt; the seconds to wait when over the per-window limit."""
        limits = self.config.limits
        if limits.max_connection_attempts is None:
            return None
        now = time.monotonic()
        attempts = self._attempts[client]
        while attempts and attempts[0] <= now - limits.attempts_window:
            attempts.popleft()
        if len(attempts) >= limits.max_connection_attempts:
            return max(1, round(attempts[0] + limits.attempts_window - now))
        attempts.append(now)
        return None

    async def _admin(self, method: str, name: str, query: dict[str, list[str]]) -> Response:
        """Switches are POST-only (a link or a prefetch cannot flip one); state is GET."""
        params = {key: values[-1] for key, values in query.items()}
        if name in ("connections", "faults"):
            if method != "GET":
                return _wrong_method("GET")
            if name == "connections":
                return _json(200, [c.describe() for c in self.connections.values()])
            return _json(200, self.faults.state())
        if name.startswith("faults/"):
            if method != "POST":
                return _wrong_method("POST")
            try:
                result = await self.faults.apply(name[len("faults/") :], params)
            except FaultError as exc:
                return _json(400, {"error": str(exc)})
            return _json(200, {"ok": True, "result": result})
        return _json(404, {"error": f"unknown admin path {ADMIN}{name}"})

    async def _handler(self, connection: ServerConnection) -> None:
        assert isinstance(connection, MockConnection)
        self.connections[connection.number] = connection
        feed = asyncio.create_task(connection.feed())
        feed.add_done_callback(connection.feed_ended)
        keepalive = asyncio.create_task(connection.keepalive())
        expire = asyncio.create_task(connection.expire())
        try:
            await connection.follow(list(connection.session.streams))
            async for message in connection:
                text = message if isinstance(message, str) else message.decode("utf-8", "replace")
                reply = handle(connection.session, text)
                connection.unfollow(reply.removed)
                await connection.follow(reply.added)
                await connection.send(reply.payload.decode())
        except ConnectionClosed:
            pass
        except Exception as exc:  # e.g. an unreadable recording: this connection ends, not the mock
            log.warning("connection %s failed: %s", connection.number, exc)
            await connection.close(INTERNAL_ERROR, "Internal error")
        finally:
            for task in (feed, keepalive, expire):
                task.cancel()
            connection.cancel_tasks()
            self.connections.pop(connection.number, None)


def _client(connection: ServerConnection) -> str:
    return str(connection.remote_address[0]) if connection.remote_address else ""
