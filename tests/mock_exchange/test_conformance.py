"""An independent Binance client library (python-binance) cannot tell the mock from Binance.

Its AsyncClient and BinanceSocketManager are pointed at the mock's URLs and receive the recorded
trades of ../shared/data unchanged: every field of every trade, in trade-id order.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from streamer.mock_exchange import Limits, MockConfig, MockExchange
from streamer.mock_exchange.config import find_shared_data
from tests.binance.recorded import payload, recorded_rows

with warnings.catch_warnings():
    # python-binance still imports the deprecated legacy API of the websockets library.
    warnings.simplefilter("ignore", DeprecationWarning)
    from binance import AsyncClient, BinanceSocketManager  # type: ignore[import-untyped]

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SYMBOL = "ADAUSDT"
COUNT = 300


def shared_data() -> Path:
    data = find_shared_data()
    if data is None or not (data / "trades" / f"{SYMBOL}-2019-06-03.csv.gz").is_file():
        if os.environ.get("CI"):
            pytest.fail("../shared/data/trades is required in CI")
        pytest.skip("../shared/data/trades is absent (recorded trades not available here)")
    return data


def recorded(count: int) -> list[dict[str, object]]:
    """The first `count` recorded trades in id order, read independently of the mock."""
    return [payload(row) for row in recorded_rows(SYMBOL, count)]


@pytest.fixture
async def mock() -> AsyncIterator[MockExchange]:
    limits = Limits(ping_interval=None, lifetime=None)
    async with MockExchange(MockConfig(data_dir=shared_data(), speed=None, limits=limits)) as m:
        yield m


@pytest.fixture
async def client(mock: MockExchange) -> AsyncIterator[AsyncClient]:
    binance = AsyncClient(api_key="conformance", api_secret="conformance")
    binance.API_URL = f"{mock.rest_url}/api"
    try:
        yield binance
    finally:
        await binance.close_connection()


def sockets(client: AsyncClient, mock: MockExchange) -> BinanceSocketManager:
    manager = BinanceSocketManager(client)
    manager.STREAM_URL = f"{mock.ws_url}/"
    return manager


async def test_trade_socket_receives_the_recorded_trades(
    mock: MockExchange, client: AsyncClient
) -> None:
    """python-binance's trade_socket gets the recorded trades, field for field, in id order."""
    expected = recorded(COUNT)
    async with sockets(client, mock).trade_socket(SYMBOL) as socket:
        received = [await socket.recv() for _ in range(COUNT)]
    assert received == expected


async def test_multiplex_socket_receives_combined_frames(
    mock: MockExchange, client: AsyncClient
) -> None:
    """python-binance's multiplex_socket gets {"stream", "data"} frames with recorded trades."""
    expected = recorded(50)
    stream = f"{SYMBOL.lower()}@trade"
    async with sockets(client, mock).multiplex_socket([stream]) as socket:
        received = [await socket.recv() for _ in range(50)]
    assert received == [{"stream": stream, "data": trade} for trade in expected]


async def test_rest_client_reads_exchange_info_and_history(
    mock: MockExchange, client: AsyncClient
) -> None:
    """python-binance's REST calls parse the mock's exchangeInfo, history and latest trades."""
    info = await client.get_exchange_info()
    assert len(info["symbols"]) == 1695
    assert await client.get_symbol_info(SYMBOL) is not None
    async with sockets(client, mock).trade_socket(SYMBOL) as socket:
        for _ in range(20):
            await socket.recv()
    expected = recorded(20)
    history = await client.get_historical_trades(symbol=SYMBOL, fromId=expected[0]["t"], limit=20)
    assert [(t["id"], t["price"], t["qty"], t["time"]) for t in history] == [
        (e["t"], e["p"], e["q"], e["T"]) for e in expected
    ]
    recent = await client.get_recent_trades(symbol=SYMBOL, limit=5)
    market = mock.exchange.market(SYMBOL)
    assert market is not None
    latest = market.id_of(market.head())
    assert [t["id"] for t in recent] == list(range(latest - 5, latest))


async def test_rest_client_sees_the_weight_and_todays_limits(
    mock: MockExchange, client: AsyncClient
) -> None:
    """python-binance reads 6,000 weight a minute in rateLimits and the used weight after each
    call, both calls on one kept-alive connection."""
    info = await client.get_exchange_info()
    after_info = int(client.response.headers["X-MBX-USED-WEIGHT-1M"])
    await client.get_recent_trades(symbol=SYMBOL, limit=5)
    after_trades = int(client.response.headers["X-MBX-USED-WEIGHT-1M"])

    weight = [r for r in info["rateLimits"] if r["rateLimitType"] == "REQUEST_WEIGHT"]
    assert [(r["interval"], r["intervalNum"], r["limit"]) for r in weight] == [("MINUTE", 1, 6000)]
    assert after_trades - after_info == 25
    assert len(mock.plain) == 1  # both calls travelled on one kept-alive connection
