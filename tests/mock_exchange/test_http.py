"""Plain HTTP in front of the websocket handshake: keep-alive, order, and the hand-over."""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path

import pytest

from streamer.mock_exchange import MockConfig, MockExchange
from streamer.mock_exchange.http import parse_head
from tests.mock_exchange.test_server import QUIET, read_response


def test_a_request_head_is_parsed_by_the_websockets_parser() -> None:
    """Method, path and headers come out of one head; a malformed head is a ValueError."""
    request = parse_head(b"POST /_mock/faults/drop?x=1 HTTP/1.1\r\nHost: h\r\n\r\n")
    assert (request.method, request.path, request.headers["Host"]) == (
        "POST",
        "/_mock/faults/drop?x=1",
        "h",
    )
    with pytest.raises(ValueError, match="invalid HTTP request line"):
        parse_head(b"GARBAGE\r\n\r\n")


async def test_a_malformed_request_gets_400_and_the_connection_closes(tiny_data: Path) -> None:
    """A request line that is not HTTP/1.1 is answered 400, then the connection is closed."""
    async with MockExchange(MockConfig(data_dir=tiny_data, speed=None, limits=QUIET)) as mock:
        reader, writer = await asyncio.open_connection(mock.config.host, mock.port)
        writer.write(b"NONSENSE\r\n\r\n")
        status, _ = await read_response(reader)
        assert await reader.read() == b""
        writer.close()
    assert status == 400


async def test_an_upgrade_after_rest_requests_on_one_connection(tiny_data: Path) -> None:
    """REST requests, then a websocket upgrade, on the same TCP connection: both work."""
    async with MockExchange(MockConfig(data_dir=tiny_data, speed=None, limits=QUIET)) as mock:
        reader, writer = await asyncio.open_connection(mock.config.host, mock.port)
        writer.write(b"GET /api/v3/ping HTTP/1.1\r\nHost: x\r\n\r\n")
        ping = await read_response(reader)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                "GET /ws/bnbbtc@trade HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        switched = (await reader.readuntil(b"\r\n\r\n")).split(b" ")[1]
        first_frame = await reader.readexactly(2)
        writer.close()
    assert ping == (200, b"{}")
    assert switched == b"101"
    assert first_frame[0] == 0x81  # a final text frame: the first trade
