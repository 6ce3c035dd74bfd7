"""Exchange faults never stop the service: it stays live and its streams come back by themselves."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from streamer.mock_exchange import MockExchange
from tests.e2e.inprocess import Running, api, running_service

PAIR = ("ETHUSDT", "NEOUSDT")

Fault = Callable[[MockExchange], Awaitable[object]]


async def drop(mock: MockExchange) -> object:
    return mock.faults.drop()


async def stall(mock: MockExchange) -> object:
    return mock.faults.stall()


async def malformed(mock: MockExchange) -> object:
    return mock.faults.malformed_frame()


async def truncated(mock: MockExchange) -> object:
    return mock.faults.truncated_frame()


async def server_shutdown(mock: MockExchange) -> object:
    return mock.faults.server_shutdown(close_after=0.2)


async def assert_live(running: Running) -> None:
    response = await api(running, "GET", "/api/health")
    assert response.json()["live"] is True


@pytest.mark.parametrize(
    "fault", [drop, stall, malformed, truncated, server_shutdown], ids=lambda f: f.__name__
)
async def test_streams_resume_after_a_connection_fault(
    sqlite_url: str, mock_exchange: MockExchange, fault: Fault
) -> None:
    """After a dropped, stalled, corrupted or shut-down connection, every symbol streams again."""
    async with running_service(sqlite_url, mock_exchange, PAIR) as running:
        await running.until(lambda: len(running.service.registry) == 2, "both workers")
        await running.trades_advance(PAIR)
        assert await fault(mock_exchange) == 1
        await assert_live(running)
        await running.trades_advance(PAIR)
        await assert_live(running)
        assert not running.task.done()


@pytest.mark.parametrize("mode", ["http", "tcp"])
async def test_streams_resume_once_refused_connections_are_accepted_again(
    sqlite_url: str, mock_exchange: MockExchange, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    """While the exchange refuses new connections the service stays live; then streams resume."""
    async with running_service(sqlite_url, mock_exchange, PAIR) as running:
        await running.until(lambda: len(running.service.registry) == 2, "both workers")
        await running.trades_advance(PAIR)
        if mode == "tcp":
            await mock_exchange.faults.refuse_tcp()
        else:
            mock_exchange.faults.refuse(429, retry_after=1)
        mock_exchange.faults.drop()
        await running.until(
            lambda: any("connect failed" in r.getMessage() for r in caplog.records),
            "a refused reconnect",
        )
        await assert_live(running)
        await mock_exchange.faults.accept()
        await running.trades_advance(PAIR)
        await assert_live(running)
        assert not running.task.done()
