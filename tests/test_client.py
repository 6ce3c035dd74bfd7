"""The CLI's client of a running service: what it makes of silence and of strangers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from streamer.client import ApiError, ServiceClient, ServiceNotRunning
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
