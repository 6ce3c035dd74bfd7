"""Binance's public REST market-data endpoints, answered without a network."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streamer.mock_exchange.config import MockConfig
from streamer.mock_exchange.exchange import Exchange
from streamer.mock_exchange.rest import HttpReply, RestApi


@pytest.fixture
def api(tiny_data: Path) -> RestApi:
    exchange = Exchange(MockConfig(data_dir=tiny_data, speed=None))
    market = exchange.market("BNBBTC")
    assert market is not None
    market.publish(25)
    return RestApi(exchange)


def get(api: RestApi, path: str, headers: dict[str, str] | None = None, /, **query: str) -> Any:
    reply = api.handle(path, {k: [v] for k, v in query.items()}, headers or {})
    return reply.status, json.loads(reply.body) if reply.body else None


def test_ping(api: RestApi) -> None:
    """GET /api/v3/ping answers an empty object."""
    assert get(api, "/api/v3/ping") == (200, {})


def test_time_in_ms_and_us(api: RestApi) -> None:
    """GET /api/v3/time answers serverTime in ms, or in µs with X-MBX-TIME-UNIT: MICROSECOND."""
    status, body = get(api, "/api/v3/time")
    _, micro = get(api, "/api/v3/time", {"x-mbx-time-unit": "MICROSECOND"})
    assert status == 200
    assert 1e12 < body["serverTime"] < 1e13
    assert 1e15 < micro["serverTime"] < 1e16


def test_exchange_info_whole(api: RestApi) -> None:
    """Without filters exchangeInfo lists every symbol of the saved response."""
    status, body = get(api, "/api/v3/exchangeInfo")
    assert status == 200
    assert len(body["symbols"]) == 4
    assert body["serverTime"] > 1


def test_exchange_info_one_symbol(api: RestApi) -> None:
    """`symbol` narrows the symbols to that one."""
    _, body = get(api, "/api/v3/exchangeInfo", symbol="ETHBTC")
    assert [s["symbol"] for s in body["symbols"]] == ["ETHBTC"]


def test_exchange_info_symbols_list(api: RestApi) -> None:
    """`symbols` takes a JSON array of names."""
    _, body = get(api, "/api/v3/exchangeInfo", symbols='["ETHBTC","LTCBTC"]')
    assert [s["symbol"] for s in body["symbols"]] == ["ETHBTC", "LTCBTC"]


def test_exchange_info_by_status(api: RestApi) -> None:
    """`symbolStatus` keeps the symbols in that status."""
    _, body = get(api, "/api/v3/exchangeInfo", symbolStatus="BREAK")
    assert [s["symbol"] for s in body["symbols"]] == ["LTCBTC"]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"symbol": "NOPEBTC"}, -1121),
        ({"symbols": '["ETHBTC","NOPEBTC"]'}, -1121),
        ({"symbol": "eth btc"}, -1100),
        ({"symbols": "ETHBTC"}, -1100),
        ({"symbolStatus": "SLEEPING"}, -1122),
        ({"symbol": "ETHBTC", "symbolStatus": "TRADING"}, -1128),
    ],
)
def test_exchange_info_errors(api: RestApi, query: dict[str, str], code: int) -> None:
    """Bad filters get HTTP 400 with Binance's error code."""
    status, body = get(api, "/api/v3/exchangeInfo", **query)
    assert status == 400
    assert body["code"] == code
    assert body["msg"]


def test_recent_trades(api: RestApi) -> None:
    """GET /api/v3/trades answers the latest trades that happened, oldest first."""
    status, body = get(api, "/api/v3/trades", symbol="BNBBTC", limit="3")
    assert status == 200
    assert [t["id"] for t in body] == [122, 123, 124]


def test_historical_trades_from_an_id(api: RestApi) -> None:
    """historicalTrades with fromId answers trades from that id on, including filled holes."""
    _, body = get(api, "/api/v3/historicalTrades", symbol="BNBBTC", fromId="103", limit="4")
    assert [t["id"] for t in body] == [103, 104, 105, 106]
    assert body[1]["price"] == body[0]["price"]


def test_historical_trades_stop_at_the_present(api: RestApi) -> None:
    """Trades that have not happened yet are never served."""
    _, body = get(api, "/api/v3/historicalTrades", symbol="BNBBTC", fromId="123", limit="10")
    assert [t["id"] for t in body] == [123, 124]


def test_historical_trades_in_microseconds(api: RestApi) -> None:
    """The time unit header switches trade times to microseconds."""
    _, body = get(
        api,
        "/api/v3/historicalTrades",
        {"x-mbx-time-unit": "microsecond"},
        symbol="BNBBTC",
        fromId="100",
        limit="1",
    )
    assert body[0]["time"] == 1_559_520_000_000_000


def test_aggregate_trades_from_an_id(api: RestApi) -> None:
    """aggTrades with fromId answers one aggregate per trade (a = f = l = the trade id)."""
    status, body = get(api, "/api/v3/aggTrades", symbol="BNBBTC", fromId="104", limit="2")
    assert status == 200
    assert body == [
        {
            "a": 104,
            "p": "0.0103",
            "q": "1.5",
            "f": 104,
            "l": 104,
            "T": body[0]["T"],
            "m": False,
            "M": True,
        },
        {
            "a": 105,
            "p": "0.0103",
            "q": "1.5",
            "f": 105,
            "l": 105,
            "T": body[1]["T"],
            "m": False,
            "M": True,
        },
    ]


def test_time_windows_are_not_served(api: RestApi) -> None:
    """startTime/endTime are refused plainly rather than answered wrongly."""
    status, body = get(api, "/api/v3/aggTrades", symbol="BNBBTC", startTime="1")
    assert status == 400
    assert body["code"] == -1101


def test_limit_is_capped_at_1000(api: RestApi) -> None:
    """A limit above 1000 is served as 1000 (here: every trade that happened)."""
    _, body = get(api, "/api/v3/trades", symbol="BNBBTC", limit="5000")
    assert len(body) == 25


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({}, -1102),
        ({"symbol": "NOPEBTC"}, -1121),
        ({"symbol": "BNBBTC", "limit": "0"}, -1100),
        ({"symbol": "BNBBTC", "limit": "ten"}, -1100),
        ({"symbol": "BNBBTC", "fromId": "x"}, -1100),
    ],
)
def test_trade_errors(api: RestApi, query: dict[str, str], code: int) -> None:
    """Missing or bad parameters get HTTP 400 with Binance's error code."""
    status, body = get(api, "/api/v3/historicalTrades", **query)
    assert status == 400
    assert body["code"] == code


def test_unknown_path_is_404(api: RestApi) -> None:
    """A path that is not an endpoint answers 404."""
    reply = api.handle("/api/v3/depth", {}, {})
    assert reply == HttpReply(404, b"", (("Content-Type", "text/plain"),))
