"""Tests for streamer.stream.pubsub."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from streamer.events import Dropped, Event, GapNotice, TradeEvent
from streamer.stream.pubsub import Overflow, PubSub, topic
from streamer.symbols import InvalidSymbol


def trade(symbol: str, trade_id: int) -> TradeEvent:
    return TradeEvent("trade", 1, symbol, trade_id, Decimal("1"), Decimal("2"), 1, False)


def test_topic_normalises_the_symbol() -> None:
    """topic() upper-cases and strips the symbol."""
    assert topic(" ethusdt ") == "TRADE_EVENTS:ETHUSDT"


def test_topic_of_an_invalid_symbol_is_refused() -> None:
    """A name that cannot be a symbol gets no topic, so no one subscribes to a dead one."""
    with pytest.raises(InvalidSymbol, match="invalid symbol"):
        topic("eth$usdt")


async def test_subscriber_gets_only_its_topics() -> None:
    """A subscription to two topics receives their events and nothing else, in order."""
    ps = PubSub()
    sub = ps.subscribe([topic("AAA"), topic("BBB")])
    for i, sym in enumerate(["AAA", "CCC", "BBB", "AAA"]):
        ps.publish(topic(sym), trade(sym, i))
    got = await sub.get_batch()
    assert [(e.symbol, e.trade_id) for e in got if isinstance(e, TradeEvent)] == [
        ("AAA", 0),
        ("BBB", 2),
        ("AAA", 3),
    ]


async def test_subscribe_all_sees_every_topic() -> None:
    """A subscription with no topics receives events of every topic, gap notices included."""
    ps = PubSub()
    sub = ps.subscribe()
    ps.publish(topic("AAA"), trade("AAA", 1))
    ps.publish(topic("ZZZ"), GapNotice("ZZZ", 1, 2))
    assert len(await sub.get_batch()) == 2


async def test_drop_oldest_keeps_newest_and_counts() -> None:
    """A full drop-oldest subscription keeps the newest events and counts the dropped ones."""
    ps = PubSub()
    sub = ps.subscribe(topic("AAA"), maxlen=3)
    for i in range(10):
        ps.publish(topic("AAA"), trade("AAA", i))
    got = sub.get_nowait_batch()
    assert got == [Dropped(7), *(trade("AAA", i) for i in (7, 8, 9))]
    assert sub.dropped == 7


async def test_drop_newest_keeps_oldest_and_counts() -> None:
    """A full drop-newest subscription keeps the oldest events and counts the dropped ones."""
    ps = PubSub()
    sub = ps.subscribe(topic("AAA"), maxlen=3, overflow=Overflow.DROP_NEWEST)
    for i in range(10):
        ps.publish(topic("AAA"), trade("AAA", i))
    assert [e.trade_id for e in sub.get_nowait_batch() if isinstance(e, TradeEvent)] == [0, 1, 2]
    assert sub.dropped == 7


async def test_slow_subscriber_does_not_affect_fast_one() -> None:
    """One overflowing subscription loses events while another, larger one keeps all of them."""
    ps = PubSub()
    slow = ps.subscribe(topic("AAA"), maxlen=2)
    fast = ps.subscribe(topic("AAA"))
    for i in range(100):
        ps.publish(topic("AAA"), trade("AAA", i))
    assert len(fast.get_nowait_batch()) == 100
    assert (len(slow), slow.dropped, fast.dropped) == (2, 98, 0)


async def test_async_iteration_wakes_on_publish_and_ends_on_close() -> None:
    """An iterating consumer is woken by a publish; its loop ends when the subscription closes."""
    ps = PubSub()
    sub = ps.subscribe(topic("AAA"))
    seen: list[int] = []

    async def consume() -> None:
        async for event in sub:
            assert isinstance(event, TradeEvent)
            seen.append(event.trade_id)
            if len(seen) == 2:
                sub.close()

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    ps.publish(topic("AAA"), trade("AAA", 1))
    ps.publish(topic("AAA"), trade("AAA", 2))
    ps.publish(topic("AAA"), trade("AAA", 3))
    await asyncio.wait_for(task, 5)
    assert seen == [1, 2]


async def test_close_wakes_a_waiting_batch_reader_with_empty_list() -> None:
    """Closing a subscription wakes a consumer blocked in get_batch, which gets an empty list."""
    ps = PubSub()
    sub = ps.subscribe(topic("AAA"))
    task = asyncio.create_task(sub.get_batch())
    await asyncio.sleep(0)
    sub.close()
    assert await asyncio.wait_for(task, 5) == []


async def test_closed_subscription_receives_nothing() -> None:
    """After unsubscribe a publish reaches no one."""
    ps = PubSub()
    with ps.subscribe(topic("AAA")) as sub:
        pass
    assert sub.closed
    assert ps.publish(topic("AAA"), trade("AAA", 1)) == 0
    assert ps.subscriptions() == []


def test_batch_limit_takes_only_that_many() -> None:
    """get_nowait_batch(n) takes the first n events and leaves the rest queued."""
    ps = PubSub()
    sub = ps.subscribe(topic("AAA"))
    ps.publish_many(topic("AAA"), [trade("AAA", i) for i in range(5)])
    assert [e.trade_id for e in sub.get_nowait_batch(2) if isinstance(e, TradeEvent)] == [0, 1]
    assert len(sub) == 3


def test_maxlen_must_be_positive() -> None:
    """A subscription of size zero is refused with a clear error."""
    with pytest.raises(ValueError, match="maxlen"):
        PubSub().subscribe(maxlen=0)


def test_an_overflow_burst_is_announced_once_before_the_next_events() -> None:
    """Every loss between two reads comes as one Dropped, ahead of the events that remain."""
    ps = PubSub()
    sub = ps.subscribe(topic("AAA"), maxlen=3)
    for i in range(5):
        ps.publish(topic("AAA"), trade("AAA", i))
    ps.publish_many(topic("AAA"), [trade("AAA", i) for i in range(5, 8)])
    assert sub.get_nowait_batch() == [Dropped(5), trade("AAA", 5), trade("AAA", 6), trade("AAA", 7)]
    ps.publish(topic("AAA"), trade("AAA", 8))
    assert sub.get_nowait_batch() == [trade("AAA", 8)]
    assert sub.dropped == 5


async def test_a_single_reader_gets_the_dropped_notice_first() -> None:
    """`get` hands over the Dropped notice before the next queued event, within max_items too."""
    ps = PubSub()
    sub = ps.subscribe(topic("AAA"), maxlen=2, overflow=Overflow.DROP_NEWEST)
    for i in range(4):
        ps.publish(topic("AAA"), trade("AAA", i))
    assert await sub.get() == Dropped(2)
    assert await sub.get() == trade("AAA", 0)
    for i in range(4, 8):
        ps.publish(topic("AAA"), trade("AAA", i))
    assert sub.get_nowait_batch(1) == [Dropped(3)]
    assert sub.get_nowait_batch() == [trade("AAA", 1), trade("AAA", 4)]


async def test_a_tap_gets_one_batch_per_loop_turn_in_publish_order() -> None:
    """Everything published in one loop turn, over every topic, reaches a tap as one batch."""
    ps = PubSub()
    batches: list[list[Event]] = []
    ps.tap(batches.append)
    ps.publish(topic("AAA"), trade("AAA", 1))
    ps.publish_many(topic("BBB"), [trade("BBB", 2), trade("BBB", 3)])
    assert batches == []
    await asyncio.sleep(0)
    assert batches == [[trade("AAA", 1), trade("BBB", 2), trade("BBB", 3)]]


async def test_a_tap_never_overflows_where_a_subscription_does() -> None:
    """A full subscription drops, but the tap still gets every event."""
    ps = PubSub()
    sub = ps.subscribe(maxlen=2)
    batches: list[list[Event]] = []
    ps.tap(batches.append)
    for i in range(10):
        ps.publish(topic("AAA"), trade("AAA", i))
    await asyncio.sleep(0)
    assert sub.dropped == 8
    assert batches == [[trade("AAA", i) for i in range(10)]]


async def test_untap_hands_over_what_is_pending_first() -> None:
    """A tap removed mid-turn still receives what was published before, then nothing."""
    ps = PubSub()
    batches: list[list[Event]] = []
    ps.tap(batches.append)
    ps.publish(topic("AAA"), trade("AAA", 1))
    ps.untap(batches.append)
    ps.publish(topic("AAA"), trade("AAA", 2))
    await asyncio.sleep(0)
    assert batches == [[trade("AAA", 1)]]
