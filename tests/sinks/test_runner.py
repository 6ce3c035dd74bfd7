"""Tests for streamer.sinks.runner: feeding sinks, retrying, and announcing every loss."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.registry import Collector

from streamer.events import Dropped, GapNotice
from streamer.otp import ChildState
from streamer.sinks import SinkError
from streamer.sinks.runner import (
    GapTracker,
    RunnerOptions,
    Sinks,
    SinkState,
    metric_families,
)
from streamer.stream.pubsub import PubSub, topic
from tests.polling import eventually
from tests.sinks.events import trade
from tests.sinks.memory import MemorySink

FAST = RunnerOptions(retry_base=0.01, retry_cap=0.05)


def publish(pubsub: PubSub, symbol: str, ids: Sequence[int]) -> None:
    pubsub.publish_many(topic(symbol), [trade(symbol, i) for i in ids])


@contextlib.asynccontextmanager
async def started(sinks: Sinks) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(sinks.supervisor.run())
    await eventually(lambda: sinks.supervisor.state is ChildState.RUNNING)
    try:
        yield task
    finally:
        await sinks.supervisor.stop()
        await asyncio.wait({task}, timeout=10)


@pytest.fixture
def pubsub() -> PubSub:
    return PubSub()


def test_tracker_turns_a_jump_in_trade_ids_into_the_exact_gap() -> None:
    """After a loss, the symbol's next trade is preceded by a notice of exactly what is missing."""
    tracker = GapTracker()
    first = tracker.prepare([trade("AAA", 1), trade("AAA", 2), trade("BBB", 7)])
    assert first.events == [trade("AAA", 1), trade("AAA", 2), trade("BBB", 7)]
    second = tracker.prepare([Dropped(5), trade("AAA", 6), trade("BBB", 8)])
    assert second.events == [GapNotice("AAA", 3, 5), trade("AAA", 6), trade("BBB", 8)]
    assert (tracker.lost, tracker.dropped) == (3, 5)


def test_tracker_takes_the_streams_own_gap_notices_as_accounted() -> None:
    """A gap the stream already announced is passed on, not announced a second time."""
    tracker = GapTracker()
    batch = tracker.prepare([trade("AAA", 1), GapNotice("AAA", 2, 4), trade("AAA", 5)])
    assert batch.events == [trade("AAA", 1), GapNotice("AAA", 2, 4), trade("AAA", 5)]
    assert tracker.lost == 0


def test_tracker_announces_a_given_up_batch_at_the_next_trade() -> None:
    """Trades of a batch that never arrived are announced as one gap, even for a new symbol."""
    tracker = GapTracker()
    tracker.prepare([trade("AAA", 1)])
    lost = tracker.prepare([trade("AAA", 2), trade("AAA", 3), trade("BBB", 10)])
    tracker.give_up(lost)
    after = tracker.prepare([trade("AAA", 4), trade("BBB", 11)])
    assert after.events == [
        GapNotice("AAA", 2, 3),
        trade("AAA", 4),
        GapNotice("BBB", 10, 10),
        trade("BBB", 11),
    ]


def test_tracker_passes_re_sent_trades_through_for_the_broker_to_drop() -> None:
    """A trade at or below the accounted position is sent again, without a gap, and the
    position does not move back."""
    tracker = GapTracker()
    tracker.prepare([trade("AAA", 5)])
    batch = tracker.prepare([trade("AAA", 4), trade("AAA", 5), trade("AAA", 6)])
    assert batch.events == [trade("AAA", 4), trade("AAA", 5), trade("AAA", 6)]
    assert tracker.accounted["AAA"] == 6


async def test_every_event_reaches_the_sink_in_order(pubsub: PubSub) -> None:
    """Trades published in process reach the sink once each, in order per symbol."""
    sink = MemorySink()
    sinks = Sinks([(sink, FAST)], pubsub, required=False)
    async with started(sinks):
        for start in range(0, 300, 30):
            publish(pubsub, "AAA", range(start, start + 30))
            publish(pubsub, "BBB", range(start, start + 30))
            await asyncio.sleep(0)
        await eventually(lambda: len(sink.events) == 600)
        runner = sinks.runners[0]
        assert runner.state is SinkState.UP
        assert runner.healthy
    assert sink.trade_ids("AAA") == list(range(300))
    assert sink.trade_ids("BBB") == list(range(300))
    assert sinks.runners[0].stats().published == 600


async def test_a_broker_down_at_start_delays_nothing_and_gets_everything_later(
    pubsub: PubSub,
) -> None:
    """The sink starts while its destination is down, reports it, and delivers all once up."""
    sink = MemorySink()
    sink.unavailable = True
    sinks = Sinks([(sink, FAST)], pubsub, required=True)
    async with started(sinks):
        runner = sinks.runners[0]
        publish(pubsub, "AAA", range(100))
        await eventually(lambda: runner.state is SinkState.RETRYING)
        assert not sinks.ready
        assert runner.stats().last_error == "down"
        sink.unavailable = False
        await eventually(lambda: len(sink.events) == 100)
        assert sinks.ready
        assert runner.stats().retries > 0
    assert sink.trade_ids("AAA") == list(range(100))
    assert sink.gaps("AAA") == []


async def test_an_optional_sink_never_makes_the_service_unready(pubsub: PubSub) -> None:
    """Without `required`, a sink that is down is reported but readiness ignores it."""
    sink = MemorySink()
    sink.unavailable = True
    sinks = Sinks([(sink, FAST)], pubsub, required=False)
    async with started(sinks):
        await eventually(lambda: sinks.runners[0].state is SinkState.RETRYING)
        assert sinks.ready
        assert not sinks.runners[0].healthy


async def test_an_unavailable_sink_gets_the_same_batch_again(pubsub: PubSub) -> None:
    """A publish that fails as unavailable is repeated with the same events: nothing is lost."""
    sink = MemorySink()
    sinks = Sinks([(sink, FAST)], pubsub, required=False)
    async with started(sinks):
        publish(pubsub, "AAA", range(10))
        await eventually(lambda: len(sink.events) == 10)
        sink.unavailable = True
        publish(pubsub, "AAA", range(10, 20))
        await eventually(lambda: sinks.runners[0].state is SinkState.RETRYING)
        sink.unavailable = False
        await eventually(lambda: len(sink.events) == 20)
    assert sink.trade_ids("AAA") == list(range(20))


async def test_overflow_is_counted_and_announced_as_the_exact_gap(pubsub: PubSub) -> None:
    """A sink that falls behind loses its oldest events, then tells its destination exactly
    which trades of which symbol it lost."""
    sink = MemorySink()
    sinks = Sinks([(sink, RunnerOptions(queue=10, batch=10))], pubsub, required=False)
    async with started(sinks):
        runner = sinks.runners[0]
        publish(pubsub, "AAA", [1])
        await eventually(lambda: sink.trade_ids("AAA") == [1])
        sink.gate.clear()
        publish(pubsub, "AAA", [2])
        await eventually(lambda: len(runner.subscription) == 0)
        publish(pubsub, "AAA", range(3, 33))
        sink.gate.set()
        await eventually(lambda: 32 in sink.trade_ids("AAA"))
        stats = runner.stats()
    assert sink.trade_ids("AAA") == [1, 2, *range(23, 33)]
    assert sink.gaps("AAA") == [(3, 22)]
    assert (stats.dropped, stats.lost) == (20, 20)


async def test_a_refused_batch_is_given_up_and_announced(pubsub: PubSub) -> None:
    """A batch the destination refuses for good is not retried forever: its trades are
    announced as a gap before the symbol's next trade."""
    sink = MemorySink()
    sinks = Sinks([(sink, FAST)], pubsub, required=False)
    async with started(sinks):
        publish(pubsub, "AAA", [1])
        await eventually(lambda: sink.trade_ids("AAA") == [1])
        sink.refuse_next = True
        publish(pubsub, "AAA", [2, 3])
        await eventually(lambda: sinks.runners[0].given_up == 1)
        publish(pubsub, "AAA", [4])
        await eventually(lambda: 4 in sink.trade_ids("AAA"))
    assert sink.trade_ids("AAA") == [1, 4]
    assert sink.gaps("AAA") == [(2, 3)]


async def test_a_stalled_sink_does_not_hold_up_another_sink_or_subscriber(
    pubsub: PubSub,
) -> None:
    """While one destination hangs, the other sink and an in-process subscriber get everything."""
    stuck, healthy = MemorySink("memory://stuck"), MemorySink("memory://healthy")
    stuck.gate.clear()
    subscriber = pubsub.subscribe(topic("AAA"))
    sinks = Sinks([(stuck, FAST), (healthy, FAST)], pubsub, required=False)
    async with started(sinks):
        publish(pubsub, "AAA", range(50))
        await eventually(lambda: len(healthy.events) == 50)
        assert len(subscriber.get_nowait_batch()) == 50
        assert stuck.events == []
        stuck.gate.set()


async def test_stopping_sends_what_is_queued(pubsub: PubSub) -> None:
    """A graceful stop publishes the events still queued before the sink closes."""
    sink = MemorySink()
    sinks = Sinks([(sink, FAST)], pubsub, required=False)
    async with started(sinks):
        publish(pubsub, "AAA", [1])
        await eventually(lambda: sink.trade_ids("AAA") == [1])
        sink.gate.clear()
        publish(pubsub, "AAA", [2])
        await eventually(lambda: len(sinks.runners[0].subscription) == 0)
        publish(pubsub, "AAA", range(3, 10))
        sink.gate.set()
        await sinks.supervisor.stop()
    assert sink.trade_ids("AAA") == list(range(1, 10))
    assert sink.closed == 1


async def test_positions_are_held_back_to_what_each_sink_made_durable(pubsub: PubSub) -> None:
    """Saved resume points go no further than the slowest sink, so a crash re-sends the rest."""
    fast, slow = MemorySink("memory://fast"), MemorySink("memory://slow")
    sinks = Sinks([(fast, FAST), (slow, FAST)], pubsub, required=False)
    sinks.resume_from({"AAA": 0, "BBB": 40})
    async with started(sinks):
        publish(pubsub, "AAA", range(1, 11))
        await eventually(lambda: len(slow.events) == 10)
        slow.gate.clear()
        publish(pubsub, "AAA", range(11, 21))
        await eventually(lambda: len(fast.events) == 20)
        assert sinks.hold_back({"AAA": 20, "BBB": 50, "CCC": 3}) == {
            "AAA": 10,
            "BBB": 40,
            "CCC": 3,
        }
        slow.gate.set()


async def test_a_stopped_symbol_starts_afresh_without_a_gap(pubsub: PubSub) -> None:
    """After a user stops a symbol, its next start far ahead is not reported as a loss."""
    sink = MemorySink()
    sinks = Sinks([(sink, FAST)], pubsub, required=False)
    async with started(sinks):
        publish(pubsub, "AAA", [1, 2])
        await eventually(lambda: len(sink.events) == 2)
        sinks.forget("AAA")
        publish(pubsub, "AAA", [100])
        await eventually(lambda: len(sink.events) == 3)
    assert sink.gaps("AAA") == []


async def test_the_tree_and_metrics_show_each_sink(pubsub: PubSub) -> None:
    """Each sink is a child of `sinks` in the tree with its state, and has its own metrics."""
    sink = MemorySink()
    sinks = Sinks([(sink, FAST)], pubsub, required=False)
    async with started(sinks):
        publish(pubsub, "AAA", range(5))
        await eventually(lambda: len(sink.events) == 5)
        tree = sinks.describe()
        registry = CollectorRegistry(auto_describe=False)

        class _Collector(Collector):
            def collect(self):  # type: ignore[no-untyped-def]
                return metric_families(sinks)

        registry.register(_Collector())
        text = generate_latest(registry).decode()
    assert tree["name"] == "sinks"
    [child] = tree["children"]
    assert child["id"] == "memory://test"
    assert child["sink"]["state"] == "up"
    assert child["sink"]["published"] == 5
    assert 'streamer_sink_published_total{sink="memory://test"} 5.0' in text
    assert 'streamer_sink_up{sink="memory://test"} 1.0' in text


def test_the_same_sink_twice_is_refused(pubsub: PubSub) -> None:
    """Two sinks with one name would publish everything twice and share one metric label."""
    with pytest.raises(SinkError, match="twice"):
        Sinks([(MemorySink(), FAST), (MemorySink(), FAST)], pubsub, required=False)
