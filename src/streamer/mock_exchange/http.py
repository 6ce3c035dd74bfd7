"""Plain HTTP on the mock's one port, with keep-alive, in front of the websocket handshake.

The websockets server answers a non-upgrade request once and closes the connection, which no
REST server does: clients such as httpx and python-binance keep their connection open and send
the next request on it. So a connection starts in plain-HTTP mode: each complete request head is
parsed with websockets' own HTTP/1.1 parser; a request to upgrade to a websocket (and whatever
follows it) is handed to the websockets protocol unchanged, and any other request is answered
here, in order, on the same connection until the client closes it or asks to.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, ClassVar, Protocol, TypeVar, cast

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response
from websockets.streams import StreamReader

log = logging.getLogger(__name__)
_HEAD_END = b"\r\n\r\n"
_UPGRADE = re.compile(rb"^upgrade:[ \t]*websocket[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
MAX_HEAD = 16 * 1024


def parse_head(head: bytes) -> Request:
    """One request head, parsed by websockets' HTTP/1.1 parser; ValueError when malformed."""
    reader = StreamReader()
    reader.feed_data(head)
    reader.feed_eof()
    parser = Request.parse(reader.read_line)
    try:
        next(parser)
    except StopIteration as done:
        request: Request = done.value
        return request
    except (EOFError, UnicodeDecodeError, NotImplementedError) as exc:
        raise ValueError(str(exc)) from None
    raise ValueError("incomplete request head")


class HttpOwner(Protocol):
    """The server behind the connections: it answers plain requests and sees who is connected."""

    plain: set[KeepAliveHttp]

    async def answer(self, connection: KeepAliveHttp, request: Request) -> Response | None:
        """The response to one plain request; None cuts the connection without an answer."""
        ...


class KeepAliveHttp(ServerConnection):
    """A websockets server connection that first serves plain HTTP/1.1 requests, kept alive."""

    owner: ClassVar[HttpOwner]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: bytearray | None = bytearray()
        self._requests: asyncio.Queue[Request] = asyncio.Queue()
        self._server_task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.owner.plain.add(self)

    def data_received(self, data: bytes) -> None:
        pending = self._pending
        if pending is None:
            super().data_received(data)
            return
        pending += data
        while (end := pending.find(_HEAD_END)) >= 0:
            head = bytes(pending[: end + len(_HEAD_END)])
            if _UPGRADE.search(head):
                self._pending = None
                self.owner.plain.discard(self)
                super().data_received(bytes(pending))
                return
            del pending[: end + len(_HEAD_END)]
            try:
                request = parse_head(head)
            except ValueError:
                self.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                self.transport.close()
                return
            self._serve(request)
        if len(pending) > MAX_HEAD:
            self.transport.abort()

    def _serve(self, request: Request) -> None:
        if self._server_task is None:
            self._server_task = asyncio.get_running_loop().create_task(self._serve_requests())
        self._requests.put_nowait(request)

    async def _serve_requests(self) -> None:
        """Answer queued requests one at a time, so responses go out in request order."""
        while True:
            request = await self._requests.get()
            try:
                response = await self.owner.answer(self, request)
            except Exception:  # a bug answering one request ends this connection, not the mock
                log.exception("answering %s %s failed", request.method, request.path)
                response = None
            if response is None or self.transport.is_closing():
                self.transport.abort()
                return
            closing = request.headers.get("Connection", "").lower() == "close"
            if closing:
                response.headers["Connection"] = "close"
            self.transport.write(response.serialize())
            if closing:
                self.transport.close()
                return

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.plain.discard(self)
        if self._server_task is not None:
            self._server_task.cancel()
        super().connection_lost(exc)


Connection = TypeVar("Connection", bound=KeepAliveHttp)


def served_by(connection_type: type[Connection], owner: HttpOwner) -> type[Connection]:
    """`connection_type` bound to `owner`: what websockets' `serve(create_connection=...)` takes."""
    bound = type(connection_type.__name__, (connection_type,), {"owner": owner})
    return cast(type[Connection], bound)
