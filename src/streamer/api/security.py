"""Who may change the running set: safe by default on loopback, a token everywhere else.

On 127.0.0.1 any local program may call the API, but a web page in the user's browser must not:
a mutating request that carries a foreign `Origin` header is refused, which closes the classic
cross-site request to localhost, and without a token only loopback names are accepted in the
`Host` header, which closes DNS rebinding (a page whose own name resolves to 127.0.0.1). Off
loopback the service refuses to start without a token, and every mutating call must present it
as a bearer token. A token never switches the `Host` check off: it only widens the accepted names
to those of this machine (and `STREAMER_ALLOWED_HOSTS`).

`/ws/trades` follows the same rules at its handshake: beyond loopback it wants the token, and on
loopback a page of another origin may not open it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import secrets
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from fastapi import HTTPException, Request, status
from starlette.datastructures import Headers

from streamer.errors import StreamerError

LOOPBACK_NAMES = ["127.0.0.1", "localhost", "[::1]"]


class TokenRequired(StreamerError, RuntimeError):
    """Raised at start when the API would listen beyond loopback without a token."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    if token is None and not is_loopback(host):
        raise TokenRequired(
            f"refusing to serve the API on {host} without a token: set STREAMER_TOKEN "
            "(or --token), or bind to 127.0.0.1"
        )


def allowed_hosts(bind_host: str, extra: Iterable[str] = ()) -> list[str]:
    """The names a `Host` header may carry: loopback, plus this machine's when bound beyond it."""
    names = list(LOOPBACK_NAMES)
    if not is_loopback(bind_host):
        if bind_host in ("0.0.0.0", "::", ""):
            names += _machine_names()
        else:
            names.append(bind_host)
    names += [name.strip() for name in extra if name.strip()]
    return list(dict.fromkeys(names))


def _machine_names() -> list[str]:
    """This machine's host name, fully qualified name and addresses (what clients may type)."""
    hostname = socket.gethostname()
    names = [hostname, socket.getfqdn()]
    with contextlib.suppress(OSError):
        names += [str(info[4][0]) for info in socket.getaddrinfo(hostname, None)]
    return names


def is_foreign_origin(headers: Headers) -> bool:
    """A browser says where the calling page came from; only the service's own pages may act."""
    origin = headers.get("origin")
    return origin is not None and urlsplit(origin).netloc != headers.get("host")


def has_token(headers: Headers, token: str) -> bool:
    scheme, _, presented = headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(presented, token)


def websocket_refusal(headers: Headers, *, token: str | None, bind_host: str) -> str | None:
    """Why a `/ws/trades` handshake is refused, or None to accept it."""
    if not is_loopback(bind_host):
        if token is None or not has_token(headers, token):
            return "a bearer token is required: Authorization: Bearer <STREAMER_TOKEN>"
        return None
    if is_foreign_origin(headers):
        return "cross-origin websockets are refused"
    return None


class MutationGuard:
    """A FastAPI dependency on every endpoint that changes state."""

    def __init__(self, token: str | None) -> None:
        self._token = token

    async def __call__(self, request: Request) -> None:
        if is_foreign_origin(request.headers):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "cross-origin requests may not mutate")
        if self._token is None:
            return
        if not has_token(request.headers, self._token):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "a bearer token is required: Authorization: Bearer <STREAMER_TOKEN>",
                headers={"WWW-Authenticate": "Bearer"},
            )
