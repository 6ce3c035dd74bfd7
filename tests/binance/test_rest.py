"""The Binance REST client, against in-process fake servers (httpx.MockTransport)."""

from __future__ import annotations

import json
import socket
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from streamer.binance.rest import BinanceRest, RestError, RetryPolicy, decode_exchange_info
from streamer.errors import HistoryUnavailable

EXCHANGE_INFO_FILE = (
    Path(__file__).resolve().parents[3]
    / "shared/data/exchange_info/binance-spot-exchangeInfo-2021-10-12.json"
)

SMALL_INFO = {
    "timezone": "UTC",
    "serverTime": 1633998511098,
    "rateLimits": [],
    "exchangeFilters": [],
    "symbols": [
        {"symbol": "ETHBTC", "status": "TRADING", "baseAsset": "ETH", "quoteAsset": "BTC"},
        {"symbol": "ETHUSDT", "status": "BREAK", "baseAsset": "ETH", "quoteAsset": "USDT"},
    ],
}

BAD_SYMBOL = {"symbol": "ETH;BTC", "status": "TRADING", "baseAsset": "ETH", "quoteAsset": "BTC"}


class Recorder:
    """A fake server answering from a script of responses, recording requests and sleeps."""

    def __init__(self, *responses: httpx.Response | type[Exception]) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.responses.pop(0)
        if isinstance(answer, httpx.Response):
            return answer
        raise answer("scripted failure")

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def client(self, *, attempts: int = 3, max_retry_after: float = 120.0) -> BinanceRest:
        policy = RetryPolicy(
            attempts=attempts,
            backoff=0.5,
            max_retry_after=max_retry_after,
            sleep=self.sleep,
            jitter=lambda delay: delay,
        )
        return BinanceRest(
            "https://exchange.test", retry=policy, transport=httpx.MockTransport(self.handle)
        )


def ok(body: object) -> httpx.Response:
    return httpx.Response(200, json=body)


async def test_exchange_info_is_validated_and_typed() -> None:
    """A good body becomes an ExchangeInfo with typed symbols, from the documented path."""
    server = Recorder(ok(SMALL_INFO))
    async with server.client() as rest:
        info = await rest.exchange_info()
    assert [s.symbol for s in info.symbols] == ["ETHBTC", "ETHUSDT"]
    assert info.symbols[1].status == "BREAK"
    assert info.server_time == 1633998511098
    assert server.requests[0].url.path == "/api/v3/exchangeInfo"


def test_the_recorded_exchange_info_decodes() -> None:
    """The real 2021-10-12 response validates, with its 1,695 symbols."""
    if not EXCHANGE_INFO_FILE.exists():
        pytest.skip(f"recorded data not found at {EXCHANGE_INFO_FILE}")
    info = decode_exchange_info(EXCHANGE_INFO_FILE.read_bytes(), "the file")
    assert len(info.symbols) == 1695
    assert sum(s.status == "TRADING" for s in info.symbols) == 1262


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (json.dumps(SMALL_INFO).encode()[:-40], "not valid JSON"),
        (b"<html>captive portal</html>", "not valid JSON"),
        (b'{"timezone": "UTC", "serverTime": 1}', "not a Binance exchangeInfo"),
        (b'{"code": 0, "msg": "ok"}', "not a Binance exchangeInfo"),
        (json.dumps({**SMALL_INFO, "symbols": [BAD_SYMBOL]}).encode(), "malformed symbol"),
    ],
)
async def test_a_body_that_is_not_exchange_info_is_rejected(body: bytes, complaint: str) -> None:
    """Truncated, foreign or malformed bodies raise one-line RestErrors, without retrying."""
    server = Recorder(httpx.Response(200, content=body))
    async with server.client() as rest:
        with pytest.raises(RestError, match=complaint) as caught:
            await rest.exchange_info()
    assert "\n" not in str(caught.value)
    assert len(server.requests) == 1


async def test_historical_trades_are_exact_and_need_no_key() -> None:
    """historicalTrades is asked with symbol/fromId/limit, no API key, and keeps exact decimals."""
    trade = {
        "id": 14364025,
        "price": "0.09643000",
        "qty": "1617.50000000",
        "quoteQty": "155.97552500",
        "time": 1559520022517,
        "isBuyerMaker": False,
        "isBestMatch": True,
    }
    server = Recorder(ok([trade]))
    async with server.client() as rest:
        trades = await rest.historical_trades(" adausdt", 14364025, 500)
    request = server.requests[0]
    assert request.url.path == "/api/v3/historicalTrades"
    assert dict(request.url.params) == {"symbol": "ADAUSDT", "fromId": "14364025", "limit": "500"}
    assert "X-MBX-APIKEY" not in request.headers
    assert trades[0].id == 14364025
    assert trades[0].price == Decimal("0.09643000")
    assert str(trades[0].qty) == "1617.50000000"
    assert trades[0].is_buyer_maker is False


async def test_a_host_without_historical_trades_says_so_once_and_serves_recent_trades() -> None:
    """A 404 on historicalTrades raises HistoryUnavailable, later calls do not ask again, and
    recent_trades reads `/api/v3/trades`."""
    trade = {"id": 7, "price": "1", "qty": "2", "time": 1559520022517, "isBuyerMaker": True}
    server = Recorder(httpx.Response(404), ok([trade]))
    async with server.client() as rest:
        with pytest.raises(HistoryUnavailable):
            await rest.historical_trades("ETHUSDT", 5)
        with pytest.raises(HistoryUnavailable):
            await rest.historical_trades("ETHUSDT", 6)
        recent = await rest.recent_trades("ETHUSDT")
    assert [r.url.path for r in server.requests] == ["/api/v3/historicalTrades", "/api/v3/trades"]
    assert dict(server.requests[1].url.params) == {"symbol": "ETHUSDT", "limit": "1000"}
    assert [t.id for t in recent] == [7]


@pytest.mark.parametrize(("from_id", "limit"), [(1, 0), (1, 1001), (-1, 10)])
async def test_historical_trades_rejects_bad_paging(from_id: int, limit: int) -> None:
    """A limit outside 1..1000 or a negative fromId is refused before any request."""
    server = Recorder()
    async with server.client() as rest:
        with pytest.raises(ValueError, match="must"):
            await rest.historical_trades("ETHUSDT", from_id, limit)
    assert server.requests == []


async def test_server_errors_are_retried_with_backoff() -> None:
    """5xx answers are retried after doubling pauses, and a later success is returned."""
    server = Recorder(httpx.Response(502), httpx.Response(503), ok(SMALL_INFO))
    async with server.client() as rest:
        info = await rest.exchange_info()
    assert len(info.symbols) == 2
    assert server.sleeps == [0.5, 1.0]


async def test_timeouts_give_up_after_the_last_attempt() -> None:
    """Timeouts on every attempt end in one RestError that says so."""
    server = Recorder(httpx.ReadTimeout, httpx.ConnectTimeout, httpx.ReadTimeout)
    async with server.client(attempts=3) as rest:
        with pytest.raises(RestError, match=r"failed after 3 attempts: no answer within 10 s"):
            await rest.exchange_info()
    assert len(server.requests) == 3
    assert server.sleeps == [0.5, 1.0]


async def test_rate_limit_waits_as_long_as_retry_after_says() -> None:
    """A 429 with Retry-After: 7 waits 7 s, then tries again."""
    server = Recorder(httpx.Response(429, headers={"Retry-After": "7"}), ok(SMALL_INFO))
    async with server.client() as rest:
        await rest.exchange_info()
    assert server.sleeps == [7.0]


async def test_a_ban_longer_than_the_cap_is_reported_not_waited() -> None:
    """A 418 asking for an hour is beyond the cap: a RestError naming both, and no sleep."""
    server = Recorder(httpx.Response(418, headers={"Retry-After": "3600"}))
    async with server.client(max_retry_after=60) as rest:
        with pytest.raises(RestError, match=r"HTTP 418.*3600 s, longer than the 60 s") as caught:
            await rest.exchange_info()
    assert caught.value.status == 418
    assert server.sleeps == []


@pytest.mark.parametrize("status", [451, 403])
async def test_location_refusal_names_the_alternatives(status: int) -> None:
    """451/403 are not retried and the message names data-api, --from-file and the mock."""
    server = Recorder(httpx.Response(status))
    async with server.client() as rest:
        with pytest.raises(RestError) as caught:
            await rest.exchange_info()
    message = str(caught.value)
    assert f"HTTP {status}" in message
    assert "https://data-api.binance.vision" in message
    assert "--from-file" in message
    assert "streamer mock-exchange" in message
    assert len(server.requests) == 1


async def test_client_errors_carry_binance_message() -> None:
    """A 400 is final and shows Binance's own code and message."""
    server = Recorder(httpx.Response(400, json={"code": -1121, "msg": "Invalid symbol."}))
    async with server.client() as rest:
        with pytest.raises(RestError, match=r"HTTP 400: Invalid symbol\. \(code -1121\)"):
            await rest.historical_trades("XXXYYY", 1)
    assert len(server.requests) == 1


async def test_nothing_listening_is_a_clear_error() -> None:
    """A closed port on 127.0.0.1 gives 'cannot connect' after the attempts, not a traceback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    policy = RetryPolicy(attempts=2, sleep=sleep, jitter=lambda delay: delay)
    async with BinanceRest(f"http://127.0.0.1:{port}", retry=policy, timeout=5) as rest:
        with pytest.raises(RestError, match="failed after 2 attempts: cannot connect"):
            await rest.exchange_info()
    assert sleeps == [0.5]
