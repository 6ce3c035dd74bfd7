"""The package's public names: pinned, importable, and the errors all catchable as one."""

from __future__ import annotations

import subprocess
import sys

import streamer

PUBLIC = {
    "ApiError",
    "DatabaseError",
    "Dropped",
    "Event",
    "GapNotice",
    "InvalidSymbol",
    "LiveState",
    "NotRunning",
    "Notice",
    "NotStreaming",
    "Overflow",
    "ServiceClient",
    "ServiceNotRunning",
    "StartResult",
    "Status",
    "StopResult",
    "Streamer",
    "StreamerError",
    "Subscription",
    "SymbolState",
    "SymbolStats",
    "TradeEvent",
    "TradesClient",
    "TradesRefused",
    "UnknownSymbol",
    "__version__",
    "normalize_symbol",
}


def test_the_public_names_are_exactly_these() -> None:
    """`__all__` lists the public API; adding or removing a name is a deliberate change here."""
    assert set(streamer.__all__) == PUBLIC
    assert len(streamer.__all__) == len(PUBLIC)


def test_every_public_name_resolves() -> None:
    """`from streamer import *` gives every listed name; unknown names are an AttributeError."""
    namespace: dict[str, object] = {}
    exec("from streamer import *", namespace)
    assert namespace.keys() >= PUBLIC
    assert not hasattr(streamer, "Service")


def test_every_public_error_derives_from_streamer_error() -> None:
    """One `except streamer.StreamerError` catches every error of the public API."""
    errors = [
        value
        for name in streamer.__all__
        if isinstance(value := getattr(streamer, name), type) and issubclass(value, Exception)
    ]
    assert len(errors) >= 8
    assert all(issubclass(error, streamer.StreamerError) for error in errors)


def test_importing_the_package_does_not_load_the_web_stack() -> None:
    """`import streamer` stays light: the API's web framework loads only when it is used."""
    code = "import sys, streamer; streamer.TradeEvent; print('fastapi' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
