"""The CLI's client of a running service: what it makes of silence and of strangers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from streamer.api.resume import InvalidResume, parse_after
from streamer.client import (
    ApiError,
    ClientEvent,
    ServiceClient,
    ServiceNotRunning,
    TradesClient,
    TradesRefused,
)
from streamer.config import Settings
from streamer.demo import prepare_database
from streamer.events import GapNotice, TradeEvent
from streamer.mock_exchange import MockExchange
from streamer.service import Service
from tests.fixtures.mock_exchange import fast_streamer_config
from tests.polling import eventually
from tests.ports import closed_port


class _NotStreamer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html><body>some other program</body></html>"
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        return


@pytest.fixture
def stranger() -> Iterator[str]:
    """An HTTP server on 127.0.0.1 that is not the streamer."""
    server = HTTPServer(("127.0.0.1", 0), _NotStreamer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent() -> Iterator[str]:
    """A port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_nothing_listening_means_no_service() -> None:
    """A refused connection is `ServiceNotRunning`, which the CLI turns into its offline mode."""
    with (
        ServiceClient(f"http://127.0.0.1:{closed_port()}") as client,
        pytest.raises(ServiceNotRunning),
    ):
        client.health()


def test_another_program_on_the_port_is_named_as_such(stranger: str) -> None:
    """An HTTP answer that is not the API's JSON gives one line, not the page it got."""
    with ServiceClient(stranger) as client, pytest.raises(ApiError) as raised:
        client.settings()

    assert "not the streamer API" in str(raised.value)
    assert "<html>" not in str(raised.value)


def test_a_service_that_does_not_answer_is_an_error_not_a_hang(silent: str) -> None:
    """A port that accepts but stays silent fails after the client's timeout."""
    with ServiceClient(silent, timeout=0.3) as client, pytest.raises(ApiError, match="did not"):
        client.settings()


@contextlib.asynccontextmanager
async def service_on(database_url: str, mock: MockExchange, port: int) -> AsyncIterator[Service]:
    """A service in this loop on `port`, stopped (and its streams with it) at the end."""
    settings = Settings(
        database_url=database_url,
        ws_url=mock.ws_url,
        rest_url=mock.rest_url,
        host="127.0.0.1",
        port=port,
    )
    listening = asyncio.Event()
    service = Service(
        settings,
        streamer_config=fast_streamer_config(mock),
        on_listening=lambda *_: listening.set(),
    )
    task = asyncio.create_task(service.run())
    try:
        async with asyncio.timeout(20):
            await listening.wait()
            await service.database_ready.wait()
        yield service
    finally:
        await service.root.stop()
        assert await task == 0


def trade_ids(events: list[ClientEvent]) -> list[int]:
    return [event.trade_id for event in events if isinstance(event, TradeEvent)]


@pytest.mark.timeout(90)
async def test_the_trades_client_resumes_across_a_service_restart(
    database_url: str, mock_exchange: MockExchange
) -> None:
    """A client following ADAUSDT while the service restarts reconnects by itself and accounts
    for every trade id exactly once: received, or inside a gap notice."""
    await prepare_database(database_url, mock_exchange.rest_url, ["ADAUSDT"])
    port = closed_port()
    client = TradesClient(f"ws://127.0.0.1:{port}", ["adausdt"], retry=0.05, retry_cap=0.2)
    received: list[ClientEvent] = []

    async def consume() -> None:
        async for event in client:
            received.append(event)

    consumer = asyncio.create_task(consume())
    try:
        async with service_on(database_url, mock_exchange, port):
            await eventually(lambda: len(trade_ids(received)) >= 20)
        seen_before = len(trade_ids(received))
        async with service_on(database_url, mock_exchange, port):
            await eventually(lambda: len(trade_ids(received)) >= seen_before + 20)
    finally:
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)

    assert client.reconnects >= 1
    accounted: list[int] = []
    for event in received:
        if isinstance(event, TradeEvent):
            accounted.append(event.trade_id)
        elif isinstance(event, GapNotice):
            accounted.extend(range(event.first_missing_id, event.last_missing_id + 1))
    assert accounted == list(range(accounted[0], accounted[0] + len(accounted)))
    assert client.positions["ADAUSDT"] == accounted[-1]


async def test_an_unknown_symbol_stops_the_trades_client_with_the_reason(
    database_url: str, mock_exchange: MockExchange
) -> None:
    """A subscription the service refuses ends the client with TradesRefused, not retries."""
    await prepare_database(database_url, mock_exchange.rest_url, [])
    port = closed_port()
    async with service_on(database_url, mock_exchange, port):
        with pytest.raises(TradesRefused, match="unknown symbol NOSUCHCOIN"):
            async for _ in TradesClient(f"ws://127.0.0.1:{port}", ["NOSUCHCOIN"]):
                pass


def test_a_resume_position_must_name_a_symbol_and_a_trade_id() -> None:
    """`after=` is parsed per symbol; anything else is refused with the part that is wrong."""
    assert parse_after("ethusdt:12, BTCUSDT:7") == {"ETHUSDT": 12, "BTCUSDT": 7}
    with pytest.raises(InvalidResume, match="'ETHUSDT'"):
        parse_after("ETHUSDT")
