"""Who may change the running set: loopback by default, a token beyond it."""

from __future__ import annotations

import pytest

from streamer.api.security import TokenRequired, check_bind, is_loopback


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
