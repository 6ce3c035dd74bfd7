"""Local addresses for tests that need nothing to be listening."""

from __future__ import annotations

import socket


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound once by the OS, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
