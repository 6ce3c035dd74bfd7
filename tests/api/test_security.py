"""Who may change the running set: loopback by default, a token beyond it."""

from __future__ import annotations

import socket

import pytest
from starlette.datastructures import Headers

from streamer.api.security import (
    TokenRequired,
    allowed_hosts,
    check_bind,
    is_loopback,
    websocket_refusal,
)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "localhost"])
def test_loopback_addresses_are_recognised(host: str) -> None:
    """Every loopback spelling counts as local."""
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com"])
def test_other_addresses_are_not_loopback(host: str) -> None:
    """Wildcards, LAN addresses and names other than localhost are not local."""
    assert not is_loopback(host)


def test_binding_beyond_loopback_without_a_token_is_refused() -> None:
    """Serving on 0.0.0.0 with no token raises an error that says how to fix it."""
    with pytest.raises(TokenRequired, match="STREAMER_TOKEN"):
        check_bind("0.0.0.0", None)


def test_binding_beyond_loopback_with_a_token_is_allowed() -> None:
    """A token makes any address acceptable."""
    check_bind("0.0.0.0", "token")


def test_loopback_needs_no_token() -> None:
    """The default address works without configuration."""
    check_bind("127.0.0.1", None)


def test_on_loopback_only_loopback_names_are_hosts() -> None:
    """Bound to 127.0.0.1 the API answers to loopback names (and configured extras) only."""
    assert allowed_hosts("127.0.0.1") == ["127.0.0.1", "localhost", "[::1]"]
    assert allowed_hosts("127.0.0.1", ["streamer.lan"])[-1] == "streamer.lan"


def test_beyond_loopback_this_machine_is_a_host_and_others_are_not() -> None:
    """Bound to an address, that address is accepted; bound to all, this machine's names are."""
    assert "10.1.2.3" in allowed_hosts("10.1.2.3")
    everywhere = allowed_hosts("0.0.0.0")
    assert socket.gethostname() in everywhere
    assert "attacker.example" not in everywhere


def headers(**values: str) -> Headers:
    return Headers({name.replace("_", "-"): value for name, value in values.items()})


def test_the_trade_stream_beyond_loopback_wants_the_token() -> None:
    """Bound beyond loopback, `/ws/trades` without the bearer token is refused."""
    refused = websocket_refusal(headers(host="10.1.2.3:8000"), token="t", bind_host="0.0.0.0")
    assert refused is not None
    assert "bearer token" in refused
    accepted = headers(host="10.1.2.3:8000", authorization="Bearer t")
    assert websocket_refusal(accepted, token="t", bind_host="0.0.0.0") is None


def test_the_trade_stream_on_loopback_refuses_other_origins() -> None:
    """On loopback, a page of another origin may not open `/ws/trades`; its own page may."""
    foreign = headers(host="127.0.0.1:8000", origin="http://attacker.example")
    own = headers(host="127.0.0.1:8000", origin="http://127.0.0.1:8000")
    assert websocket_refusal(foreign, token=None, bind_host="127.0.0.1") is not None
    assert websocket_refusal(own, token=None, bind_host="127.0.0.1") is None
    assert websocket_refusal(headers(host="127.0.0.1"), token=None, bind_host="127.0.0.1") is None
