"""Reading a symbol's live stats in tests, where "not seen yet" reads as zero counters."""

from __future__ import annotations

from streamer.stream.hub import StreamHub
from streamer.stream.stats import LiveState, SymbolStats


def live(hub: StreamHub, symbol: str) -> SymbolStats:
    """The symbol's stats, or empty `stopped` ones when the hub has never seen it."""
    return hub.stats(symbol) or SymbolStats(symbol=symbol, state=LiveState.STOPPED, since=0.0)
