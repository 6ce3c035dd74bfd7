"""A real service (database, hub, supervisors, HTTP on a free port) against the mock exchange."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from streamer.config import Settings
from streamer.mock_exchange import MockExchange
from streamer.service import Service
from tests.fixtures.database import seed_database
from tests.fixtures.mock_exchange import fast_streamer_config

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
    await seed_database(database_url, SYMBOLS)
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
        streamer_config=fast_streamer_config(mock_exchange),
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
