"""A minimal combined-stream server on 127.0.0.1 that a test scripts frame by frame.

It speaks just enough of the exchange's protocol (streams in the URL, SUBSCRIBE/UNSUBSCRIBE with
replies, the 5-messages-per-second rule closing with 1008, pings) for connection-level tests that
must control exactly which frame arrives when.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import msgspec
from picows import (
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    ws_create_server,
)


@dataclass
class Client:
    transport: WSTransport
    streams: set[str]
    received: list[bytes] = field(default_factory=list)
    pongs: list[bytes] = field(default_factory=list)
    times: deque[float] = field(default_factory=lambda: deque(maxlen=6))
    violated: bool = False


class _ServerListener(WSListener):
    def __init__(self, server: FakeServer, streams: set[str]) -> None:
        self.server = server
        self.streams = streams
        self.client: Client | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.client = Client(transport, set(self.streams))
        self.server.clients.append(self.client)
        self.server.connects += 1

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        client = self.client
        assert client is not None
        if frame.msg_type in (WSMsgType.TEXT, WSMsgType.PONG):
            now = time.monotonic()
            client.times.append(now)
            if len(client.times) == 6 and now - client.times[0] < 1.0:
                client.violated = True
                self.server.violations += 1
                transport.send_close(WSCloseCode.POLICY_VIOLATION, b"Too many requests")
                transport.disconnect()
                return
        if frame.msg_type is WSMsgType.PONG:
            client.pongs.append(frame.get_payload_as_bytes())
        elif frame.msg_type is WSMsgType.TEXT:
            raw = frame.get_payload_as_bytes()
            client.received.append(raw)
            request = msgspec.json.decode(raw)
            params = set(request["params"])
            if request["method"] == "SUBSCRIBE":
                refused = params & self.server.refuse
                if refused:
                    reply = {"error": {"code": 2, "msg": "Invalid request"}, "id": request["id"]}
                    transport.send(WSMsgType.TEXT, msgspec.json.encode(reply))
                    return
                client.streams |= params
            else:
                client.streams -= params
            reply = {"result": None, "id": request["id"]}
            transport.send(WSMsgType.TEXT, msgspec.json.encode(reply))
        elif frame.msg_type is WSMsgType.CLOSE:
            transport.send_close(WSCloseCode.OK)
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self.client in self.server.clients:
            self.server.clients.remove(self.client)


class FakeServer:
    """Start with `async with FakeServer() as server`; `server.url` is the base websocket URL."""

    def __init__(self) -> None:
        self.clients: list[Client] = []
        self.connects = 0
        self.violations = 0
        self.refuse: set[str] = set()
        self.reject_status: int | None = None
        self._server: asyncio.Server | None = None
        self.url = ""

    def _route(self, request: WSUpgradeRequest) -> _ServerListener | None:
        query = parse_qs(urlsplit(request.path.decode()).query)
        streams = set(query.get("streams", [""])[0].split("/")) - {""}
        return _ServerListener(self, streams)

    async def __aenter__(self) -> FakeServer:
        self._server = await ws_create_server(self._route, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        for client in list(self.clients):
            client.transport.disconnect(graceful=False)
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def subscribed(self, stream: str) -> list[Client]:
        return [c for c in self.clients if stream in c.streams]

    def trade(
        self,
        symbol: str,
        trade_id: int,
        *,
        price: str = "1.5",
        quantity: str = "2",
        time: int | None = None,
    ) -> None:
        """Send one trade of `symbol` to every client subscribed to it (any values, even bad)."""
        stream = f"{symbol.lower()}@trade"
        at = 1_700_000_000_000 + (trade_id % 10**9) if time is None else time
        data = {
            "e": "trade",
            "E": at,
            "s": symbol,
            "t": trade_id,
            "p": price,
            "q": quantity,
            "T": at,
            "m": False,
            "M": True,
        }
        frame = msgspec.json.encode({"stream": stream, "data": data})
        for client in self.subscribed(stream):
            client.transport.send(WSMsgType.TEXT, frame)

    def broadcast(self, raw: bytes) -> None:
        for client in self.clients:
            client.transport.send(WSMsgType.TEXT, raw)

    def ping_all(self, payload: bytes) -> None:
        for client in self.clients:
            client.transport.send_ping(payload)
