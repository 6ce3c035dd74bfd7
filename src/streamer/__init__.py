"""Live Binance trade streams for a persisted set of symbols, under OTP-style supervision.

The names below are the public API; everything else is internal and may change. They are
imported on first use, so `import streamer` (and the `streamer` command) stays quick and does
not load the web stack for a program that only needs the events' types.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

__version__ = version("streamer")

if TYPE_CHECKING:
    from streamer.api.models import SymbolState
    from streamer.client import (
        ApiError,
        Notice,
        ServiceClient,
        ServiceNotRunning,
        TradesClient,
        TradesRefused,
    )
    from streamer.db import DatabaseError, Status, UnknownSymbol
    from streamer.embed import NotRunning, NotStreaming, Streamer
    from streamer.errors import StreamerError
    from streamer.events import Dropped, Event, GapNotice, TradeEvent
    from streamer.service.streaming import StartResult, StopResult
    from streamer.stream.pubsub import Overflow, Subscription
    from streamer.stream.stats import LiveState, SymbolStats
    from streamer.symbols import InvalidSymbol, normalize_symbol

_HOMES = {
    "ApiError": "streamer.client",
    "DatabaseError": "streamer.db",
    "Dropped": "streamer.events",
    "Event": "streamer.events",
    "GapNotice": "streamer.events",
    "InvalidSymbol": "streamer.symbols",
    "LiveState": "streamer.stream.stats",
    "NotRunning": "streamer.embed",
    "Notice": "streamer.client",
    "NotStreaming": "streamer.embed",
    "Overflow": "streamer.stream.pubsub",
    "ServiceClient": "streamer.client",
    "ServiceNotRunning": "streamer.client",
    "StartResult": "streamer.service.streaming",
    "Status": "streamer.db",
    "StopResult": "streamer.service.streaming",
    "Streamer": "streamer.embed",
    "StreamerError": "streamer.errors",
    "Subscription": "streamer.stream.pubsub",
    "SymbolState": "streamer.api.models",
    "SymbolStats": "streamer.stream.stats",
    "TradeEvent": "streamer.events",
    "TradesClient": "streamer.client",
    "TradesRefused": "streamer.client",
    "UnknownSymbol": "streamer.db",
    "normalize_symbol": "streamer.symbols",
}

__all__ = [
    "ApiError",
    "DatabaseError",
    "Dropped",
    "Event",
    "GapNotice",
    "InvalidSymbol",
    "LiveState",
    "NotRunning",
    "NotStreaming",
    "Notice",
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
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'streamer' has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
