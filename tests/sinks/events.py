"""Events for sink tests."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from streamer.events import TradeEvent
from streamer.sinks.base import Sink, SinkEvent
from streamer.wire import encode_events


def trade(symbol: str, trade_id: int, *, backfilled: bool = False) -> TradeEvent:
    return TradeEvent(
        "trade",
        1_700_000_000_000 + trade_id,
        symbol,
        trade_id,
        Decimal("1.5"),
        Decimal("0.25"),
        1_700_000_000_000 + trade_id,
        trade_id % 2 == 0,
        backfilled=backfilled,
    )


def trades(symbol: str, ids: range | list[int]) -> list[TradeEvent]:
    return [trade(symbol, i) for i in ids]


async def publish(sink: Sink, events: Sequence[SinkEvent]) -> None:
    """`sink.publish` with the documents the journal would have encoded."""
    await sink.publish(events, encode_events(events))


async def publish_all(sink: Sink, *batches: Sequence[SinkEvent]) -> None:
    """Open `sink`, publish each batch in turn and close it, even when a publish fails."""
    await sink.open()
    try:
        for batch in batches:
            await sink.publish(batch, encode_events(batch))
    finally:
        await sink.close()
