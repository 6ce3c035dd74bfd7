"""The whole service in the test's own event loop, for tests that reach inside it (crash a
worker, subscribe in-process) while it talks to a mock exchange and serves its API on a free port.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx

from streamer.binance.config import StreamerConfig
from streamer.config import Settings
from streamer.demo import prepare_database
from streamer.mock_exchange import MockExchange
from streamer.service import Service
from tests.fixtures.mock_exchange import fast_streamer_config

DEADLINE = 20.0
"""Seconds an awaited condition may take before the test fails; far beyond a loaded machine."""
POLL = 0.02

T = TypeVar("T")


async def eventually(
    probe: Callable[[], T | None],
    what: str,
    *,
    deadline: float = DEADLINE,
    running: asyncio.Task[int] | None = None,
) -> T:
    """Poll `probe` until it gives a value other than None or False.

    Fails at once, saying so, when the service's `running` task ends meanwhile.
    """
    end = time.monotonic() + deadline
    while True:
        result = probe()
        if result is not None and result is not False:
            return result
        if running is not None and running.done():
            raise AssertionError(f"the service ended ({running.result()}) while waiting for {what}")
        if time.monotonic() > end:
            raise AssertionError(f"no {what} within {deadline:.0f} s")
        await asyncio.sleep(POLL)


@dataclass
class Running:
    """A running service, its root task (whose result is the exit code) and its API's address."""

    service: Service
    task: asyncio.Task[int]
    base_url: str

    async def until(
        self, probe: Callable[[], T | None], what: str, *, deadline: float = DEADLINE
    ) -> T:
        return await eventually(probe, what, running=self.task, deadline=deadline)

    def last_trade_id(self, symbol: str) -> int | None:
        stats = self.service.hub.stats(symbol)
        return None if stats is None else stats.last_trade_id

    async def trades_advance(self, symbols: Sequence[str]) -> None:
        """Wait until each symbol's last trade id moves past what it is now."""
        for symbol in symbols:
            before = self.last_trade_id(symbol)

            def moved(symbol: str = symbol, before: int | None = before) -> bool:
                now = self.last_trade_id(symbol)
                return now is not None and (before is None or now > before)

            await self.until(moved, f"a new {symbol} trade")


@contextlib.asynccontextmanager
async def running_service(
    database_url: str,
    mock: MockExchange,
    symbols: Sequence[str] = (),
    *,
    token: str | None = None,
    database_retry: float = 1.0,
    prepare: bool = True,
    listen_deadline: float = DEADLINE,
    sinks: Sequence[str] = (),
    sink_required: bool = False,
    streamer_config: StreamerConfig | None = None,
    instance_id: str = "",
    lease_ttl: float = 6.0,
    lease_renew: float = 1.0,
    journal_dir: Path | None = None,
) -> AsyncIterator[Running]:
    """Seed the database from `mock` with `symbols` on, run the service, stop it at the end."""
    if prepare:
        await prepare_database(database_url, mock.rest_url, list(symbols))
    listening: list[int] = []
    settings = Settings(
        database_url=database_url,
        ws_url=mock.ws_url,
        rest_url=mock.rest_url,
        host="127.0.0.1",
        port=0,
        token=token,
        log_level="INFO",
        sinks=list(sinks),
        sink_required=sink_required,
        instance_id=instance_id,
        lease_ttl=lease_ttl,
        lease_renew=lease_renew,
        journal_dir=journal_dir,
    )
    service = Service(
        settings,
        streamer_config=streamer_config or fast_streamer_config(mock),
        on_listening=lambda _, port: listening.append(port),
        database_retry=database_retry,
    )
    task = asyncio.create_task(service.run())
    try:
        await eventually(
            lambda: bool(listening), "API listening", deadline=listen_deadline, running=task
        )
        running = Running(service, task, f"http://127.0.0.1:{listening[0]}")
        yield running
    finally:
        if not task.done():
            await service.root.stop()
        await asyncio.wait({task}, timeout=DEADLINE)
        if not task.done():
            task.cancel()


async def api(
    running: Running,
    method: str,
    path: str,
    *,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """One call to the running service's API."""
    async with httpx.AsyncClient(base_url=running.base_url, timeout=10) as client:
        return await client.request(method, path, params=params, headers=headers)
