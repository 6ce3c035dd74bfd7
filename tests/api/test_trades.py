"""`/ws/trades`: live events as JSON for other processes, filtered by symbol."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from streamer.api import server, trades
from streamer.api.trades import parse_symbols
from streamer.mock_exchange import MockConfig
from streamer.symbols import InvalidSymbol
from streamer.tail import TailError, follow
from tests.api.conftest import Running
from tests.polling import eventually


def ws_url(running: Running, query: str) -> str:
    return running.base_url.replace("http://", "ws://") + "/ws/trades" + query


async def collect(url: str, count: int) -> list[dict[str, Any]]:
    """The first `count` events the service sends on `url`."""
    events: list[dict[str, Any]] = []
    task = asyncio.create_task(follow(url, events.append))
    try:
        await eventually(lambda: len(events) >= count or task.done())
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return events[:count]


async def test_a_client_receives_only_the_symbols_it_asked_for(running: Running) -> None:
    """`?symbols=ethusdt` delivers ETHUSDT trades in id order, none of NEOUSDT."""
    for symbol in ("ETHUSDT", "NEOUSDT"):
        await running.http.post(f"/api/settings/{symbol}/start")

    events = await collect(ws_url(running, "?symbols=ethusdt"), 20)

    assert len(events) == 20
    assert {event["symbol"] for event in events} == {"ETHUSDT"}
    assert {event["kind"] for event in events} == {"trade"}
    ids = [event["trade_id"] for event in events]
    assert ids == sorted(set(ids))


async def test_trades_carry_exact_decimal_strings(running: Running) -> None:
    """Prices and quantities arrive as decimal strings, never as floats."""
    await running.http.post("/api/settings/ETHUSDT/start")

    event = (await collect(ws_url(running, "?symbols=ETHUSDT"), 1))[0]

    assert isinstance(event["price"], str)
    assert isinstance(event["quantity"], str)
    assert float(event["price"]) > 0


async def test_a_malformed_symbol_closes_the_socket_with_the_reason(running: Running) -> None:
    """`?symbols=eth usdt` is refused with a close frame that says why."""
    with pytest.raises(TailError, match="invalid symbol 'eth usdt'"):
        await follow(ws_url(running, "?symbols=eth%20usdt"), lambda _: None)


@pytest.mark.parametrize("name", ["NOPEUSDT", "ethu%C5%BFdt"])
async def test_a_symbol_not_in_the_settings_closes_the_socket(running: Running, name: str) -> None:
    """A well-formed name that is not in the settings (a long s is not an s) is refused."""
    with pytest.raises(TailError, match="unknown symbol"):
        await follow(ws_url(running, f"?symbols={name}"), lambda _: None)


async def test_the_forms_users_type_name_the_symbol(running: Running) -> None:
    """`?symbols=eth/usdt` follows ETHUSDT."""
    await running.http.post("/api/settings/ETHUSDT/start")

    events = await collect(ws_url(running, "?symbols=eth/usdt"), 3)

    assert {event["symbol"] for event in events} == {"ETHUSDT"}


async def _drain(ws: ClientConnection) -> None:
    while True:
        await ws.recv()


async def closed_with(url: str, **options: Any) -> tuple[int | None, str | None]:
    """The close code and reason the service answers a handshake on `url` with."""
    async with connect(url, **options) as ws:
        with pytest.raises(ConnectionClosed):
            await _drain(ws)
    assert ws.close_code is not None
    return ws.close_code, ws.close_reason


async def test_a_page_of_another_origin_cannot_open_the_stream(running: Running) -> None:
    """On loopback a cross-origin handshake (a web page elsewhere) is closed with 1008."""
    code, reason = await closed_with(
        ws_url(running, "?symbols=ETHUSDT"), origin=Origin("http://attacker.example")
    )
    assert code == 1008
    assert reason == "cross-origin websockets are refused"


async def test_clients_beyond_the_cap_are_refused_clearly(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond the connection cap a client is closed with 1013 (try again later) and why."""
    monkeypatch.setattr(trades, "MAX_CLIENTS", 1)
    async with connect(ws_url(running, "?symbols=ETHUSDT")):
        await eventually(lambda: True)
        code, reason = await closed_with(ws_url(running, "?symbols=ETHUSDT"))
    assert code == 1013
    assert reason is not None
    assert "too many /ws/trades clients (at most 1)" in reason


@pytest.fixture
def fast_pings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The service pings every 50 ms and its socket buffers are small (set before it starts),
    so that a test sees in a moment what a real client meets after megabytes."""
    bind = server.bind

    def small_bind(host: str, port: int) -> socket.socket:
        sock = bind(host, port)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        return sock

    monkeypatch.setattr(server, "bind", small_bind)
    monkeypatch.setattr(server, "WS_PING_INTERVAL", 0.05)
    monkeypatch.setattr(trades, "CLIENT_QUEUE", 20)


def small_socket(running: Running) -> socket.socket:
    """A client socket with a tiny receive buffer, so a slow reader is felt at once."""
    host, port = running.base_url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    return sock


class TestSlowClients:
    """A fast market, so that slow and stopped readers show within a second or two."""

    @pytest.fixture
    def mock_config(self) -> MockConfig:
        return MockConfig(port=0, speed=20000.0)

    async def test_a_slow_client_gets_dropped_notices_and_stays(
        self, fast_pings: None, running: Running
    ) -> None:
        """A client reading slower than the stream is told what it lost and is never cut."""
        await running.http.post("/api/settings/ETHUSDT/start")
        await running.http.post("/api/settings/BTCUSDT/start")
        notices: list[dict[str, Any]] = []
        async with connect(
            ws_url(running, ""), sock=small_socket(running), max_queue=1, close_timeout=0.1
        ) as ws:
            async with asyncio.timeout(20):
                while len(notices) < 2:
                    message = json.loads(await ws.recv())
                    if message["kind"] == "dropped":
                        notices.append(message)
                    await asyncio.sleep(0.02)
            assert ws.close_code is None
        assert all(notice["count"] > 0 for notice in notices)

    async def test_a_client_that_stops_reading_is_cut_with_a_reason(
        self,
        fast_pings: None,
        running: Running,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """A client that reads nothing at all is closed after the stall limit, and it is logged."""
        monkeypatch.setattr(trades, "STALL_SECONDS", 0.3)
        await running.http.post("/api/settings/ETHUSDT/start")
        async with connect(
            ws_url(running, "?symbols=ETHUSDT"),
            sock=small_socket(running),
            max_queue=1,
            close_timeout=0.1,
        ):
            await eventually(lambda: "stopped reading for 0.3 s" in caplog.text)


def test_no_symbols_means_every_symbol() -> None:
    """An absent or empty `symbols` parameter subscribes to every topic."""
    assert parse_symbols(None) is None
    assert parse_symbols(" ") is None


def test_symbols_are_normalised_and_deduplicated_in_order() -> None:
    """`" ethusdt,BTC/USDT,ETHUSDT,,"` is read as ETHUSDT then BTCUSDT."""
    assert parse_symbols(" ethusdt,BTC/USDT,ETHUSDT,,") == ["ETHUSDT", "BTCUSDT"]


def test_a_bad_symbol_in_the_list_is_an_error() -> None:
    """One malformed entry rejects the whole list."""
    with pytest.raises(InvalidSymbol):
        parse_symbols("ETHUSDT,$$$")


async def test_a_symbol_that_is_not_streaming_is_announced_at_once(running: Running) -> None:
    """Asking for a known symbol with no worker first gets a notice saying it is not streaming."""
    (event,) = await collect(ws_url(running, "?symbols=NEOUSDT"), 1)

    assert event["kind"] == "notice"
    assert event["message"].startswith("NEOUSDT is not streaming")


async def test_an_unknown_symbol_closes_the_socket_saying_so(running: Running) -> None:
    """A well-formed symbol missing from the settings is refused at once with the reason."""
    with pytest.raises(TailError, match="unknown symbol XRPUSDT"):
        await follow(ws_url(running, "?symbols=ETHUSDT,XRPUSDT"), lambda _: None)


class TestUnicodeSymbols:
    """The spot testnet's non-ASCII symbol, listed by the mock's built-in exchangeInfo."""

    SYMBOL = "这是测试币456"

    @pytest.fixture
    def mock_config(self, tmp_path: Path) -> MockConfig:
        return MockConfig(port=0, speed=50.0, data_dir=tmp_path, synthetic_rate=20.0)

    async def test_a_non_ascii_symbol_streams_end_to_end(self, running: Running) -> None:
        """Seeded, started through its URL-encoded API path, streamed, and followed by name."""
        await running.service.repository.add_missing({self.SYMBOL})
        path = "/api/settings/" + quote(self.SYMBOL) + "/start"

        started = await running.http.post(path)
        events = await collect(ws_url(running, "?symbols=" + quote(self.SYMBOL)), 3)
        state = (await running.http.get("/api/settings/" + quote(self.SYMBOL))).json()

        assert started.status_code == 200
        assert started.json()["symbol"] == self.SYMBOL
        assert [e["symbol"] for e in events if e["kind"] == "trade"] == [self.SYMBOL] * 3
        assert state["symbol"] == self.SYMBOL
