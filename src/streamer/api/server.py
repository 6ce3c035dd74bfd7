"""The HTTP server as a supervised child: bound before it reports started, stopped gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterator

import uvicorn
from fastapi import FastAPI

from streamer.otp import ChildSpec, Started

log = logging.getLogger(__name__)

GRACEFUL_SECONDS = 3


class _Server(uvicorn.Server):
    """Uvicorn without its own signal handling: the application's root owns SIGINT and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


WS_PING_INTERVAL = 20.0


def bind(host: str, port: int) -> socket.socket:
    """Bind now, so that a taken port fails the child's start with a clear reason."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def server_spec(
    make_app: Callable[[Callable[[], None]], FastAPI],
    host: str,
    port: int,
    *,
    on_listening: Callable[[str, int], None] | None = None,
) -> ChildSpec:
    """A worker child serving the app; `make_app` receives the hook that signals readiness."""

    async def serve(started: Started) -> None:
        sock = bind(host, port)
        bound_host, bound_port = sock.getsockname()[:2]

        def ready() -> None:
            log.info("API listening on http://%s:%d", bound_host, bound_port)
            if on_listening is not None:
                on_listening(bound_host, bound_port)
            started()

        config = uvicorn.Config(
            make_app(ready),
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=GRACEFUL_SECONDS,
            ws_ping_interval=WS_PING_INTERVAL,
            # No pong deadline: a client reading slowly through a backlog answers late, and only
            # a client that reads nothing at all is cut (by `/ws/trades` itself, with a reason).
            ws_ping_timeout=None,
        )
        server = _Server(config)
        serving = asyncio.ensure_future(server.serve(sockets=[sock]))
        try:
            await asyncio.shield(serving)
        except asyncio.CancelledError:
            server.should_exit = True
            await serving
            log.info("API on http://%s:%d stopped", bound_host, bound_port)
            raise
        finally:
            sock.close()
        if not server.started:
            raise RuntimeError(f"the API on {host}:{port} failed to start")

    return ChildSpec(id="http", start=serve, shutdown=GRACEFUL_SECONDS + 2.0)
