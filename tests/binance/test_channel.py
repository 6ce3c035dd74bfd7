"""Tests for streamer.binance.channel (no sockets: trades are fed by hand)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from streamer.binance.channel import SymbolChannel
from streamer.binance.events import Event, GapNotice, TradeEvent
from streamer.binance.stats import LiveState
from streamer.pubsub import PubSub, Subscription, topic


def trade(trade_id: int, *, backfilled: bool = False) -> TradeEvent:
    return TradeEvent(
        "trade",
        trade_id,
        "ETHUSDT",
        trade_id,
        Decimal("1"),
        Decimal("1"),
        trade_id,
        False,
        backfilled=backfilled,
    )


def make(last_id: int | None = None) -> tuple[SymbolChannel, Subscription, list[SymbolChannel]]:
    pubsub = PubSub()
    sub = pubsub.subscribe(topic("ETHUSDT"))
    dirty: list[SymbolChannel] = []
    return SymbolChannel("ETHUSDT", pubsub.route(topic("ETHUSDT")), dirty, last_id), sub, dirty


def ids(events: list[Event]) -> list[int | tuple[int, int]]:
    result: list[int | tuple[int, int]] = []
    for e in events:
        if isinstance(e, TradeEvent):
            result.append(e.trade_id)
        elif isinstance(e, GapNotice):
            result.append((e.first_missing_id, e.last_missing_id))
        else:
            raise AssertionError(f"unexpected {e!r}")
    return result


def test_in_order_trades_reach_subscribers_on_flush_as_one_batch() -> None:
    """Consecutive trades are collected, marked dirty once, and published together on flush."""
    channel, sub, dirty = make()
    for i in range(10, 15):
        channel.on_trade(trade(i))
    assert dirty == [channel]
    assert len(sub) == 0
    channel.flush()
    assert ids(sub.get_nowait_batch()) == [10, 11, 12, 13, 14]
    assert (channel.trades, channel.last_id) == (5, 14)
    assert channel.stats().last_trade_time == 14


def test_duplicates_are_dropped_and_counted() -> None:
    """A trade id at or below the last one is never published again."""
    channel, sub, _ = make()
    for i in (1, 2, 2, 1, 3):
        channel.on_trade(trade(i))
    channel.flush()
    assert ids(sub.get_nowait_batch()) == [1, 2, 3]
    assert channel.duplicates == 2


async def test_gap_holds_live_trades_and_wakes_the_worker() -> None:
    """A jump in ids holds the trade, records the gap and wakes a waiting worker."""
    channel, sub, _ = make()
    waiter = asyncio.create_task(channel.wait())
    await asyncio.sleep(0)
    channel.on_trade(trade(1))
    channel.on_trade(trade(5))
    channel.on_trade(trade(6))
    await asyncio.wait_for(waiter, 5)
    assert channel.gap == (2, 4)
    channel.flush()
    assert ids(sub.get_nowait_batch()) == [1]


def test_late_frames_close_the_gap_without_back_fill() -> None:
    """Trades that arrive late and out of order are sorted and released without a fetch."""
    channel, sub, _ = make()
    for i in (1, 4, 2, 3, 5):
        channel.on_trade(trade(i))
    assert channel.settle() is False
    assert ids(sub.get_nowait_batch()) == [1, 2, 3, 4, 5]
    assert channel.gap is None


def test_back_filled_trades_come_before_the_held_ones() -> None:
    """After a fill the back-filled trades, then the held live trades, are published in order."""
    channel, sub, _ = make()
    for i in (1, 4, 5):
        channel.on_trade(trade(i))
    assert channel.settle() is True
    assert channel.gap == (2, 3)
    channel.publish_backfilled(trade(2, backfilled=True))
    channel.publish_backfilled(trade(3, backfilled=True))
    channel.gap_done(filled=True)
    events = sub.get_nowait_batch()
    assert ids(events) == [1, 2, 3, 4, 5]
    assert [e.backfilled for e in events if isinstance(e, TradeEvent)] == [
        False,
        True,
        True,
        False,
        False,
    ]
    assert (channel.gaps_filled, channel.trades_backfilled) == (1, 2)


def test_unfillable_gap_is_announced_and_counted_lost() -> None:
    """A gap that cannot be filled becomes a GapNotice, then the held trades follow."""
    channel, sub, _ = make()
    for i in (1, 4):
        channel.on_trade(trade(i))
    channel.settle()
    channel.report_lost(2, 3)
    channel.gap_done(filled=False)
    events = sub.get_nowait_batch()
    assert ids(events) == [1, (2, 3), 4]
    assert isinstance(events[1], GapNotice)
    assert (channel.gaps_lost, channel.trades_lost) == (1, 2)


def test_resumed_channel_detects_the_gap_since_its_last_id() -> None:
    """A channel resumed at id 10 treats a first trade of 13 as a gap of 11..12."""
    channel, _, _ = make(last_id=10)
    channel.on_trade(trade(13))
    assert channel.gap == (11, 12)


async def test_failure_is_raised_in_the_worker() -> None:
    """An error handed to fail() is raised by wait(), which is how the worker crashes."""
    channel, _, _ = make()
    channel.fail(ValueError("boom"))
    with pytest.raises(ValueError, match="boom"):
        await channel.wait()


def test_state_changes_move_since() -> None:
    """A new state records when it began; the same state again does not."""
    channel, _, _ = make()
    channel.since = 0.0
    channel.set_state(LiveState.CONNECTING)
    assert channel.since == 0.0
    channel.set_state(LiveState.STREAMING)
    assert channel.since > 0.0
    assert channel.stats().state == "streaming"
