"""The database behind a relay a test can cut: a database outage, or a network partition between
one instance and the database while the others still reach it."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator

from tests.fixtures.relay import Relay, relay_to, through


@contextlib.asynccontextmanager
async def proxied(database_url: str) -> AsyncIterator[tuple[str, Relay]]:
    """`database_url` rewritten to pass through a relay the test can stop and start again."""
    async with relay_to(database_url) as relay:
        yield through(database_url, relay), relay


@contextlib.contextmanager
def relay_thread(database_url: str) -> Iterator[tuple[str, Cutter]]:
    """`proxied` for tests that block (real processes): the relay runs in a thread of its own."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    cutter = Cutter(loop)
    try:
        url = asyncio.run_coroutine_threadsafe(cutter.enter(database_url), loop).result()
        yield url, cutter
    finally:
        asyncio.run_coroutine_threadsafe(cutter.exit(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


class Cutter:
    """Cuts a relay that runs on another thread's loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._stack = contextlib.AsyncExitStack()
        self._relay: Relay | None = None

    async def enter(self, database_url: str) -> str:
        self._relay = await self._stack.enter_async_context(relay_to(database_url))
        return through(database_url, self._relay)

    async def exit(self) -> None:
        await self._stack.aclose()

    def cut(self) -> None:
        assert self._relay is not None
        asyncio.run_coroutine_threadsafe(self._relay.stop(), self._loop).result()

    def restore(self) -> None:
        """Listen again on the same port: the database answers again."""
        assert self._relay is not None
        asyncio.run_coroutine_threadsafe(self._relay.start(), self._loop).result()
