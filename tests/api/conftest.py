"""A real service (database, hub, supervisors, HTTP on a free port) against the mock exchange."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from streamer.app import Service
from streamer.binance.config import StreamerConfig
from streamer.config import Settings
from streamer.db import create_engine, upgrade
from streamer.db.seed import seed
from streamer.mock_exchange import MockExchange

SYMBOLS = ["ETHUSDT", "NEOUSDT", "BTCUSDT", "ADAUSDT"]
TOKEN = "s3cret-token"


class Running:
    """A service running in this loop, with an HTTP client on its API."""

    def __init__(self, service: Service, base_url: str) -> None:
        self.service = service
        self.base_url = base_url
        self.http = httpx.AsyncClient(base_url=base_url, timeout=10.0)


@pytest.fixture
def service_token() -> str | None:
    """Override to run the service with a token."""
    return None


@pytest.fixture
async def running(
    database_url: str, mock_exchange: MockExchange, service_token: str | None
) -> AsyncIterator[Running]:
    await upgrade(database_url)
    engine = create_engine(database_url)
    await seed(engine, SYMBOLS)
    await engine.dispose()
    settings = Settings(
        database_url=database_url,
        ws_url=mock_exchange.ws_url,
        rest_url=mock_exchange.rest_url,
        host="127.0.0.1",
        port=0,
        token=service_token,
    )
    listening: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    service = Service(
        settings,
        streamer_config=StreamerConfig(
            ws_url=mock_exchange.ws_url,
            rest_url=mock_exchange.rest_url,
            backoff_base=0.05,
            backoff_cap=0.2,
            reorder_window=0.05,
        ),
        on_listening=lambda host, port: listening.set_result(f"http://{host}:{port}"),
    )
    task = asyncio.create_task(service.run())
    async with asyncio.timeout(20):
        base_url = await listening
        await service.database_ready.wait()
    running = Running(service, base_url)
    try:
        yield running
    finally:
        await running.http.aclose()
        await service.root.stop()
        assert await task == 0
