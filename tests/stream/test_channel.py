"""Tests for streamer.stream.channel (no sockets: trades are fed by hand)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import msgspec
import pytest

from streamer.events import Event, GapNotice, TradeEvent
from streamer.stream.channel import SymbolChannel
from streamer.stream.pubsub import PubSub, Subscription, topic
from streamer.stream.stats import LiveState
from streamer.stream.validate import Rejection, TradeRule

T0 = 1_700_000_000_000  # a trade time (ms) the validation rule accepts


def trade(trade_id: int, *, backfilled: bool = False) -> TradeEvent:
    return TradeEvent(
        "trade",
        T0 + trade_id,
        "ETHUSDT",
        trade_id,
        Decimal("1"),
        Decimal("1"),
        T0 + trade_id,
        False,
        backfilled=backfilled,
    )


def make(
    last_id: int | None = None, rule: TradeRule | None = None
) -> tuple[SymbolChannel, Subscription, list[SymbolChannel]]:
    pubsub = PubSub()
    sub = pubsub.subscribe(topic("ETHUSDT"))
    dirty: list[SymbolChannel] = []
    channel = SymbolChannel("ETHUSDT", pubsub.route(topic("ETHUSDT")), dirty, last_id, rule)
    return channel, sub, dirty


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
    assert channel.stats().last_trade_time == T0 + 14


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
    """An error handed to fail() is raised by wait(), which is how the worker learns of it."""
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


def test_an_absurd_id_does_not_poison_the_symbol() -> None:
    """A frame with t = 10^12 is dropped and counted: no gap, no position, later trades flow."""
    channel, sub, _ = make()
    for i in (1, 2, 3):
        channel.on_trade(trade(i))
    channel.on_trade(msgspec.structs.replace(trade(4), trade_id=10**12))
    for i in (4, 5):
        channel.on_trade(trade(i))
    channel.flush()
    assert ids(sub.get_nowait_batch()) == [1, 2, 3, 4, 5]
    assert channel.gap is None
    assert (channel.last_id, channel.duplicates) == (5, 0)
    assert channel.stats().rejected == {"id_jump": 1}


def test_a_first_trade_with_a_negative_id_never_becomes_the_position() -> None:
    """t = -5 as the very first frame is refused, so no back-fill from a negative id follows."""
    channel, sub, _ = make()
    channel.on_trade(trade(-5))
    channel.on_trade(trade(1))
    channel.on_trade(trade(2))
    channel.flush()
    assert ids(sub.get_nowait_batch()) == [1, 2]
    assert (channel.gap, channel.rejected) == (None, {Rejection.ID_RANGE: 1})


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (trade(2**63), "id_range"),
        (msgspec.structs.replace(trade(4), trade_time=250_000_000_000_000_001), "time_range"),
        (msgspec.structs.replace(trade(4), price=Decimal("NaN")), "price"),
        (msgspec.structs.replace(trade(4), quantity=Decimal("-1")), "quantity"),
    ],
)
def test_trades_failing_validation_never_reach_subscribers(bad: TradeEvent, reason: str) -> None:
    """Ids of 2^63+, times past 2100, NaN or negative decimals are counted, never published."""
    channel, sub, _ = make()
    for event in (trade(1), trade(2), trade(3), bad):
        channel.on_trade(event)
    channel.flush()
    assert ids(sub.get_nowait_batch()) == [1, 2, 3]
    assert channel.last_id == 3
    assert channel.stats().rejected == {reason: 1}


async def test_a_symbol_whose_trades_keep_failing_is_quarantined() -> None:
    """Repeated rejections park the symbol with its reason and wake the worker; release resumes."""
    channel, sub, _ = make(rule=TradeRule(quarantine_after=3))
    channel.on_trade(trade(1))
    waiter = asyncio.create_task(channel.wait())
    for _ in range(3):
        channel.on_trade(msgspec.structs.replace(trade(2), price=Decimal("Infinity")))
    await asyncio.wait_for(waiter, 5)
    stats = channel.stats()
    assert (stats.state, stats.quarantines) == ("quarantined", 1)
    assert "price" in (stats.reason or "")
    channel.on_trade(trade(2))
    channel.set_state(LiveState.STREAMING)
    assert channel.state == "quarantined"
    channel.release()
    channel.on_trade(trade(2))
    channel.flush()
    assert ids(sub.get_nowait_batch()) == [1, 2]
    assert channel.state == "connecting"


async def test_a_position_later_trades_keep_contradicting_is_dropped_on_release() -> None:
    """A poisoned first trade (10^12) is undone: ids far behind it quarantine, release resets."""
    channel, sub, _ = make(rule=TradeRule(quarantine_after=3, max_id_jump=1_000))
    channel.on_trade(msgspec.structs.replace(trade(1), trade_id=10**12))
    channel.flush()
    sub.get_nowait_batch()
    for i in (1, 2, 3):
        channel.on_trade(trade(i))
    assert channel.quarantined is not None
    assert channel.stats().rejected == {"id_behind": 3}
    channel.release()
    for i in (4, 5):
        channel.on_trade(trade(i))
    channel.flush()
    assert ids(sub.get_nowait_batch()) == [4, 5]


def test_a_jump_the_next_trade_confirms_is_a_gap_not_a_rejection() -> None:
    """Resumed at id 10, ids 50,000,000 and 50,000,001 make a gap: the stream really moved on."""
    channel, _, _ = make(last_id=10, rule=TradeRule(max_id_jump=1_000))
    channel.on_trade(msgspec.structs.replace(trade(1), trade_id=50_000_000))
    assert channel.gap is None
    channel.on_trade(msgspec.structs.replace(trade(2), trade_id=50_000_001))
    assert channel.gap == (11, 50_000_000)
    assert channel.rejected == {"id_jump": 1}


def test_two_outliers_with_real_trades_between_them_are_both_refused() -> None:
    """An accepted trade between two absurd ids keeps the second from confirming the first."""
    channel, sub, _ = make(rule=TradeRule(max_id_jump=1_000))
    channel.on_trade(trade(1))
    channel.on_trade(msgspec.structs.replace(trade(2), trade_id=10**12))
    channel.on_trade(trade(2))
    channel.flush()
    channel.on_trade(msgspec.structs.replace(trade(3), trade_id=10**12 + 1))
    channel.on_trade(trade(3))
    channel.flush()
    assert ids(sub.get_nowait_batch()) == [1, 2, 3]
    assert (channel.gap, channel.rejected) == (None, {"id_jump": 2})
