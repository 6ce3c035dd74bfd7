"""A TCP relay in front of the database server that a test can cut: a database outage, or a
network partition between one instance and the database while the others still reach it."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator

from sqlalchemy.engine import make_url


class TcpProxy:
    """A TCP relay in front of the database server; `cut()` is an outage, `restore()` its end."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Stop accepting and drop every open connection, as a crashed server would."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def restore(self) -> None:
        await self.start()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, upstream_writer}
        await asyncio.gather(
            _pipe(reader, upstream_writer), _pipe(upstream_reader, writer), return_exceptions=True
        )
        self._writers -= {writer, upstream_writer}


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.transport.abort()


@contextlib.asynccontextmanager
async def proxied(database_url: str) -> AsyncIterator[tuple[str, TcpProxy]]:
    """`database_url` rewritten to pass through a relay the test can cut."""
    url = make_url(database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    try:
        yield url.set(port=proxy.port).render_as_string(hide_password=False), proxy
    finally:
        await proxy.cut()


@contextlib.contextmanager
def relay_thread(database_url: str) -> Iterator[tuple[str, Cutter]]:
    """`proxied` for tests that block (real processes): the relay runs in a thread of its own."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    url = make_url(database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    cutter = Cutter(loop, proxy)
    try:
        asyncio.run_coroutine_threadsafe(proxy.start(), loop).result()
        yield url.set(port=proxy.port).render_as_string(hide_password=False), cutter
    finally:
        cutter.cut()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


class Cutter:
    """Cuts a relay that runs on another thread's loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, proxy: TcpProxy) -> None:
        self._loop = loop
        self._proxy = proxy

    def cut(self) -> None:
        asyncio.run_coroutine_threadsafe(self._proxy.cut(), self._loop).result()
