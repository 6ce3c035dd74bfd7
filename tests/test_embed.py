"""`Streamer`: the service embedded in a program's own event loop, against the mock exchange."""

from __future__ import annotations

import asyncio
import logging

import pytest

from streamer import (
    NotRunning,
    NotStreaming,
    Status,
    Streamer,
    TradeEvent,
    UnknownSymbol,
)
from streamer.mock_exchange import MockExchange
from tests.polling import eventually

pytestmark = pytest.mark.timeout(60)


def embedded(database_url: str, mock: MockExchange, *symbols: str) -> Streamer:
    return Streamer(
        symbols=symbols, database_url=database_url, ws_url=mock.ws_url, rest_url=mock.rest_url
    )


async def test_trades_arrive_in_order_and_shutdown_is_quiet(
    database_url: str, mock_exchange: MockExchange, caplog: pytest.LogCaptureFixture
) -> None:
    """A fresh database is seeded, trades of the symbol arrive in id order, and leaving the
    block stops everything without a single error or crash line in the log."""
    caplog.set_level(logging.INFO)
    received: list[TradeEvent] = []
    async with embedded(database_url, mock_exchange, "ada/usdt") as streamer:
        async for event in streamer.trades("ADAUSDT"):
            assert isinstance(event, TradeEvent)
            received.append(event)
            if len(received) == 20:
                break
    ids = [event.trade_id for event in received]
    assert ids == list(range(ids[0], ids[0] + 20))
    assert {event.symbol for event in received} == {"ADAUSDT"}
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert not any("crashed" in r.getMessage() for r in caplog.records)
    with pytest.raises(NotRunning):
        streamer.trades("ADAUSDT")


async def test_start_stop_and_status(database_url: str, mock_exchange: MockExchange) -> None:
    """Symbols started and stopped through the streamer show in its typed status."""
    async with embedded(database_url, mock_exchange, "ADAUSDT") as streamer:
        (started,) = await streamer.start_streaming("FETUSDT")
        assert (started.symbol, started.already_running) == ("FETUSDT", False)
        states = {state.symbol: state for state in await streamer.status()}
        assert set(states) == {"ADAUSDT", "FETUSDT"}
        assert states["FETUSDT"].status is Status.ON
        await eventually(lambda: streamer.service.registry.lookup("ADAUSDT") is not None)
        (stopped,) = await streamer.stop_streaming("ADAUSDT")
        assert stopped.was_running
        (remaining,) = await streamer.status()
        assert (remaining.symbol, remaining.status) == ("FETUSDT", Status.ON)


async def test_a_symbol_that_is_not_streaming_is_refused_at_once(
    database_url: str, mock_exchange: MockExchange
) -> None:
    """Subscribing to a symbol without a worker raises instead of waiting for nothing."""
    async with embedded(database_url, mock_exchange, "ADAUSDT") as streamer:
        with pytest.raises(NotStreaming, match="FETUSDT is not streaming"):
            streamer.trades("ADAUSDT", "FETUSDT")


async def test_an_unknown_symbol_fails_the_start_and_leaves_nothing_running(
    database_url: str, mock_exchange: MockExchange
) -> None:
    """A symbol the exchange does not list fails `start()` with UnknownSymbol; nothing runs."""
    streamer = embedded(database_url, mock_exchange, "NOSUCHCOIN")
    with pytest.raises(UnknownSymbol):
        await streamer.start()
    with pytest.raises(NotRunning):
        await streamer.status()


async def test_stopping_ends_a_consumer_waiting_for_trades(
    database_url: str, mock_exchange: MockExchange
) -> None:
    """A consumer iterating over trades sees the iteration end when the streamer stops."""
    streamer = embedded(database_url, mock_exchange, "ADAUSDT")
    await streamer.start()
    trades = streamer.trades("ADAUSDT")

    async def consume() -> int:
        return len([event async for event in trades])

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0.2)
    await streamer.stop()
    assert await asyncio.wait_for(consumer, 10) >= 0
    assert trades.closed
