"""The HTTP server child: a port that cannot be had is a clear start failure."""

from __future__ import annotations

import socket

import pytest

from streamer.api.server import bind


def test_a_taken_port_fails_with_the_address_and_the_reason() -> None:
    """Binding where another socket listens raises one line naming host, port and cause."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}: "):
            bind("127.0.0.1", port)


def test_a_free_port_is_bound_and_listening() -> None:
    """Port 0 binds a free port that accepts connections."""
    sock = bind("127.0.0.1", 0)
    try:
        with socket.create_connection(sock.getsockname()[:2], timeout=5):
            pass
    finally:
        sock.close()
