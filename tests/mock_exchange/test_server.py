"""The server: REST, websocket streams and the admin endpoint on one port, and its refusals."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidMessage, InvalidStatus

from streamer.mock_exchange import Limits, MockConfig, MockExchange
from tests.mock_exchange.conftest import until

QUIET = Limits(ping_interval=None, lifetime=None, max_messages_per_s=None)


@asynccontextmanager
async def running(tiny_data: Path, **options: Any) -> AsyncIterator[MockExchange]:
    options.setdefault("limits", QUIET)
    async with MockExchange(MockConfig(data_dir=tiny_data, speed=None, **options)) as mock:
        yield mock


async def test_rest_and_websocket_share_one_port(mock_exchange: MockExchange) -> None:
    """A REST call and a websocket stream are both served on the mock's single port."""
    assert mock_exchange.rest_url.removeprefix("http") == mock_exchange.ws_url.removeprefix("ws")
    async with httpx.AsyncClient(base_url=mock_exchange.rest_url) as client:
        response = await client.get("/api/v3/ping")
    assert response.status_code == 200
    assert response.json() == {}
    async with connect(f"{mock_exchange.ws_url}/ws/btcusdt@trade", max_queue=None) as ws:
        event = json.loads(await ws.recv())
    assert event["e"] == "trade"
    assert event["s"] == "BTCUSDT"


async def test_rest_errors_over_http(tiny_data: Path) -> None:
    """A REST error reaches the client as HTTP 400 with Binance's JSON body."""
    async with running(tiny_data) as mock, httpx.AsyncClient(base_url=mock.rest_url) as client:
        response = await client.get("/api/v3/exchangeInfo", params={"symbol": "NOPEBTC"})
    assert response.status_code == 400
    assert response.json() == {"code": -1121, "msg": "Invalid symbol."}


async def test_time_unit_header_over_http(tiny_data: Path) -> None:
    """The X-MBX-TIME-UNIT request header reaches the REST handler."""
    async with running(tiny_data) as mock, httpx.AsyncClient(base_url=mock.rest_url) as client:
        response = await client.get("/api/v3/time", headers={"X-MBX-TIME-UNIT": "MICROSECOND"})
    assert response.json()["serverTime"] > 10**15


@pytest.mark.parametrize(("path", "status"), [("/ws/aa@trade?timeUnit=SECOND", 400), ("/x", 404)])
async def test_bad_websocket_urls_are_refused(tiny_data: Path, path: str, status: int) -> None:
    """An upgrade to a bad URL is answered with an HTTP error instead of a websocket."""
    async with running(tiny_data) as mock:
        with pytest.raises(InvalidStatus) as caught:
            async with connect(f"{mock.ws_url}{path}"):
                pass
    assert caught.value.response.status_code == status


async def test_too_many_streams_in_the_url(tiny_data: Path) -> None:
    """A combined URL naming more streams than the limit is refused with 400."""
    limits = Limits(max_streams=1, ping_interval=None, lifetime=None, max_messages_per_s=None)
    async with running(tiny_data, limits=limits) as mock:
        with pytest.raises(InvalidStatus) as caught:
            async with connect(f"{mock.ws_url}/stream?streams=aa@trade/bb@trade"):
                pass
    assert caught.value.response.status_code == 400


async def test_connection_attempts_per_window(tiny_data: Path) -> None:
    """Past the connection attempts allowed per window, an upgrade gets 429 and Retry-After."""
    limits = Limits(
        max_connection_attempts=2,
        attempts_window=300,
        ping_interval=None,
        lifetime=None,
        max_messages_per_s=None,
    )
    async with running(tiny_data, limits=limits) as mock:
        for _ in range(2):
            async with connect(f"{mock.ws_url}/ws"):
                pass
        with pytest.raises(InvalidStatus) as caught:
            async with connect(f"{mock.ws_url}/ws"):
                pass
    response = caught.value.response
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0


@pytest.mark.parametrize("status", [429, 418])
async def test_refusal_with_retry_after(tiny_data: Path, status: int) -> None:
    """While refusing, REST and upgrades get the status and Retry-After; accept() ends it."""
    async with running(tiny_data) as mock, httpx.AsyncClient(base_url=mock.rest_url) as client:
        mock.faults.refuse(status, retry_after=7)
        refused = await client.get("/api/v3/ping")
        with pytest.raises(InvalidStatus) as caught:
            async with connect(f"{mock.ws_url}/ws"):
                pass
        await mock.faults.accept()
        accepted = await client.get("/api/v3/ping")
    assert refused.status_code == status
    assert refused.headers["Retry-After"] == "7"
    assert refused.json()["code"] == -1003
    assert caught.value.response.status_code == status
    assert accepted.status_code == 200


async def test_tcp_refusal_keeps_open_connections_and_can_be_undone(tiny_data: Path) -> None:
    """refuse tcp cuts new requests and upgrades, keeps open websockets, and the admin undoes it."""
    async with running(tiny_data) as mock, connect(f"{mock.ws_url}/ws") as open_ws:
        async with httpx.AsyncClient(base_url=mock.rest_url) as admin:
            switched = await admin.post("/_mock/faults/refuse", params={"mode": "tcp"})
        assert switched.status_code == 200
        with pytest.raises((OSError, InvalidMessage)):
            async with connect(f"{mock.ws_url}/ws"):
                pass
        async with httpx.AsyncClient(base_url=mock.rest_url) as client:
            with pytest.raises(httpx.TransportError):
                await client.get("/api/v3/ping")
        await open_ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1}))
        assert json.loads(await open_ws.recv()) == {"result": [], "id": 1}
        async with httpx.AsyncClient(base_url=mock.rest_url) as admin:
            assert (await admin.post("/_mock/faults/accept")).status_code == 200
            assert (await admin.get("/api/v3/ping")).status_code == 200
        async with connect(f"{mock.ws_url}/ws"):
            pass


async def test_rest_connections_are_kept_alive(tiny_data: Path) -> None:
    """Several REST requests travel over one kept-alive TCP connection, answered in order."""
    async with running(tiny_data) as mock:
        reader, writer = await asyncio.open_connection(mock.config.host, mock.port)
        request = b"GET /api/v3/ping HTTP/1.1\r\nHost: x\r\n\r\n"
        writer.write(request + request.replace(b"ping", b"time"))
        await writer.drain()
        answers = [await read_response(reader) for _ in range(2)]
        writer.write(b"GET /api/v3/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        last = await read_response(reader)
        assert await reader.read() == b""  # closed, as asked
        writer.close()
    assert answers[0] == (200, b"{}")
    assert answers[1][0] == 200
    assert b"serverTime" in answers[1][1]
    assert last == (200, b"{}")


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    length = int(next(line.split(":")[1] for line in head.split("\r\n") if "Length" in line))
    return int(head.split()[1]), await reader.readexactly(length)


async def test_every_rest_answer_carries_the_used_weight(tiny_data: Path) -> None:
    """X-MBX-USED-WEIGHT-1M is on every answer, errors included, and grows by each weight."""
    async with running(tiny_data) as mock, httpx.AsyncClient(base_url=mock.rest_url) as client:
        ping = await client.get("/api/v3/ping")
        info = await client.get("/api/v3/exchangeInfo")
        error = await client.get("/api/v3/trades", params={"symbol": "NOPEBTC"})
    used = [int(r.headers["X-MBX-USED-WEIGHT-1M"]) for r in (ping, info, error)]
    assert error.status_code == 400
    assert used[1] - used[0] == 20
    assert used[2] - used[1] == 25


async def test_weight_beyond_the_limit_is_a_429(tiny_data: Path) -> None:
    """Beyond the per-minute weight an IP gets 429, -1003 and a Retry-After, as documented."""
    limits = Limits(ping_interval=None, lifetime=None, request_weight=50)
    async with (
        running(tiny_data, limits=limits) as mock,
        httpx.AsyncClient(base_url=mock.rest_url) as client,
    ):
        answers = [
            await client.get("/api/v3/trades", params={"symbol": "BNBBTC"}) for _ in range(3)
        ]
        admin = await client.get("/_mock/faults")
    assert [a.status_code for a in answers] == [200, 200, 429]
    refused = answers[2]
    assert refused.json()["code"] == -1003
    assert "current limit is 50 request weight per 1 MINUTE" in refused.json()["msg"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["X-MBX-USED-WEIGHT-1M"] == "50"
    assert admin.status_code == 200  # the admin endpoint is not Binance's and costs nothing


async def test_exchange_info_advertises_todays_limits(tiny_data: Path) -> None:
    """exchangeInfo's rateLimits say 6,000 weight per minute even from an older saved file."""
    async with running(tiny_data) as mock, httpx.AsyncClient(base_url=mock.rest_url) as client:
        limits = (await client.get("/api/v3/exchangeInfo")).json()["rateLimits"]
    weight = [r for r in limits if r["rateLimitType"] == "REQUEST_WEIGHT"]
    assert weight == [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000}
    ]


async def test_admin_switches_are_post_only(tiny_data: Path) -> None:
    """A GET (a link, a prefetch) cannot switch a fault on; reading the state is GET only."""
    async with running(tiny_data) as mock, httpx.AsyncClient(base_url=mock.rest_url) as client:
        fetched = await client.get("/_mock/faults/refuse", params={"status": 418})
        posted_state = await client.post("/_mock/faults")
        state = (await client.get("/_mock/faults")).json()
        rest_post = await client.post("/api/v3/ping")
    assert fetched.status_code == 405
    assert fetched.headers["Allow"] == "POST"
    assert posted_state.status_code == 405
    assert state["refusal"] is None
    assert rest_post.status_code == 405


async def test_a_unicode_symbol_streams_and_has_history(tmp_path: Path) -> None:
    """The built-in listing has the testnet's Unicode symbol: it streams under its
    percent-encoded name and has REST history."""
    symbol = "这是测试币456"
    config = MockConfig(data_dir=tmp_path, speed=1.0, synthetic_rate=100.0, limits=QUIET)
    async with MockExchange(config) as mock:
        stream = quote(f"{symbol}@trade", safe="@")
        async with connect(f"{mock.ws_url}/stream?streams={stream}") as ws:
            event = json.loads(await ws.recv())
        async with httpx.AsyncClient(base_url=mock.rest_url) as client:
            history = await client.get("/api/v3/trades", params={"symbol": symbol, "limit": 1})
            info = await client.get("/api/v3/exchangeInfo", params={"symbol": symbol})
    assert event["stream"] == f"{symbol}@trade"
    assert event["data"]["s"] == symbol
    assert history.status_code == 200
    assert info.json()["symbols"][0]["symbol"] == symbol


async def test_slow_rest(tiny_data: Path) -> None:
    """With slow REST on, a client with a shorter timeout than the delay times out."""
    async with running(tiny_data) as mock, httpx.AsyncClient(base_url=mock.rest_url) as client:
        mock.faults.slow_rest(30.0)
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/api/v3/ping", timeout=0.05)
        mock.faults.slow_rest(0.0)
        assert (await client.get("/api/v3/ping")).status_code == 200


async def test_admin_lists_connections(tiny_data: Path) -> None:
    """GET /_mock/connections describes each open websocket connection."""
    async with running(tiny_data) as mock, connect(f"{mock.ws_url}/stream?streams=aa@trade"):
        await until(lambda: len(mock.connections) == 1)
        async with httpx.AsyncClient(base_url=mock.rest_url) as client:
            listed = (await client.get("/_mock/connections")).json()
    assert len(listed) == 1
    assert listed[0]["streams"] == ["aa@trade"]
    assert listed[0]["combined"] is True


async def test_admin_applies_faults(tiny_data: Path) -> None:
    """POST /_mock/faults/<name> runs a fault with its query as parameters."""
    async with running(tiny_data) as mock, httpx.AsyncClient(base_url=mock.rest_url) as client:
        skip = await client.post("/_mock/faults/skip_ids", params={"symbol": "BNBBTC", "count": 2})
        refuse = await client.post("/_mock/faults/refuse", params={"status": 418})
        state = (await client.get("/_mock/faults")).json()
        refused = await client.get("/api/v3/ping")
        await client.post("/_mock/faults/accept")
        slow = await client.post("/_mock/faults/slow_rest", params={"seconds": "0"})
    assert skip.json() == {"ok": True, "result": [100, 101]}
    assert refuse.status_code == 200
    assert state["refusal"] == {"status": 418, "retry_after": 1}
    assert refused.status_code == 418
    assert slow.status_code == 200


async def test_admin_drops_connections(tiny_data: Path) -> None:
    """POST /_mock/faults/drop cuts every websocket connection."""
    async with running(tiny_data) as mock, connect(f"{mock.ws_url}/ws") as ws:
        await until(lambda: len(mock.connections) == 1)
        async with httpx.AsyncClient(base_url=mock.rest_url) as client:
            answer = await client.post("/_mock/faults/drop")
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert answer.json() == {"ok": True, "result": 1}


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/_mock/faults/explode", 400),
        ("/_mock/faults/drop?connection=999", 400),
        ("/_mock/faults/skip_ids", 400),
        ("/_mock/faults/skip_ids?symbol=NOPE", 400),
        ("/_mock/faults/refuse?status=500", 400),
        ("/_mock/faults/slow_rest?seconds=soon", 400),
        ("/_mock/nothing", 404),
    ],
)
async def test_admin_errors(tiny_data: Path, path: str, status: int) -> None:
    """An unknown fault, connection or symbol, or a bad value, is a one-line JSON error."""
    async with running(tiny_data) as mock, httpx.AsyncClient(base_url=mock.rest_url) as client:
        response = await client.post(path)
    assert response.status_code == status
    assert response.json()["error"]


async def test_stop_closes_connections_going_away(tiny_data: Path) -> None:
    """Stopping the mock closes open websockets with 1001."""
    mock = MockExchange(MockConfig(data_dir=tiny_data, limits=QUIET))
    await mock.start()
    async with connect(f"{mock.ws_url}/ws") as ws:
        await until(lambda: len(mock.connections) == 1)
        await mock.stop()
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert ws.close_code == 1001


async def test_preload_reads_every_recording(tiny_data: Path) -> None:
    """preload() gives every recorded symbol its market before any client asks."""
    async with running(tiny_data) as mock:
        await mock.preload()
        loaded = sorted(s for s in mock.exchange.files if s in mock.exchange.markets)
    assert loaded == ["BNBBTC", "ETHBTC", "XRPUSDT"]


@pytest.mark.parametrize("speed", [1.0, 25.0, 1000.0])
async def test_trade_times_agree_with_server_time_at_every_speed(
    tiny_data: Path, speed: float
) -> None:
    """At any replay speed a streamed or listed trade's time is a moment the server has seen."""
    config = MockConfig(data_dir=tiny_data, speed=speed, limits=QUIET)
    async with MockExchange(config) as mock, httpx.AsyncClient(base_url=mock.rest_url) as client:
        async with connect(f"{mock.ws_url}/ws/bnbbtc@trade") as ws:
            streamed = [json.loads(await ws.recv()) for _ in range(3)]
        history = (await client.get("/api/v3/trades", params={"symbol": "BNBBTC"})).json()
        now = (await client.get("/api/v3/time")).json()["serverTime"]
    times = [e["T"] for e in streamed] + [e["E"] for e in streamed] + [t["time"] for t in history]
    assert all(now - 60_000 < t <= now for t in times), (now, times)
    assert [e["T"] for e in streamed] == sorted(e["T"] for e in streamed)
