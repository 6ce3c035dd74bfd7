"""Tests for streamer.stream.stats: typed, frozen snapshots of a symbol's live state."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from streamer.events import TradeEvent
from streamer.stream.channel import SymbolChannel
from streamer.stream.pubsub import PubSub, topic
from streamer.stream.stats import LiveState, SymbolStats


def test_a_snapshot_keeps_its_moment_while_the_stream_goes_on() -> None:
    """A stats snapshot is frozen: later trades change the next snapshot, not the one taken."""
    pubsub = PubSub()
    channel = SymbolChannel("ETHUSDT", pubsub.route(topic("ETHUSDT")), [])
    at = 1_700_000_000_000
    trade = TradeEvent("trade", at, "ETHUSDT", 1, Decimal(1), Decimal(1), at, False)
    channel.on_trade(trade)
    channel.flush()
    before = channel.stats("conn-1")
    channel.on_trade(msgspec.structs.replace(trade, trade_id=2))
    channel.flush()
    assert (before.trades, before.last_trade_id, before.connection) == (1, 1, "conn-1")
    assert (channel.stats().trades, channel.stats().last_trade_id) == (2, 2)
    with pytest.raises(AttributeError):
        before.trades = 5  # type: ignore[misc]


def test_stats_serialise_with_the_state_as_its_name() -> None:
    """The live state reads as its plain name in JSON, e.g. `quarantined`, for every client."""
    stats = SymbolStats(
        symbol="ETHUSDT", state=LiveState.QUARANTINED, since=0.0, reason="bad trade ids"
    )
    data = msgspec.json.decode(msgspec.json.encode(stats))
    assert (data["state"], data["reason"]) == ("quarantined", "bad trade ids")
