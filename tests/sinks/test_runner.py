"""Tests for streamer.sinks.runner: every sink a cursor over the journal, nothing lost."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.registry import Collector

from streamer.journal import FsyncPolicy, Journal, JournalOptions
from streamer.otp import ChildState
from streamer.sinks import SinkError
from streamer.sinks.runner import (
    TROUBLE_SECONDS,
    RunnerOptions,
    Sinks,
    SinkState,
    cursor_name,
    id_ranges,
    metric_families,
)
from streamer.stream.market import PAGE
from streamer.stream.pubsub import PubSub, topic
from streamer.wire import encode_events
from tests.polling import eventually
from tests.sinks.events import trade
from tests.sinks.memory import MemorySink

FAST = RunnerOptions(retry_base=0.01, retry_cap=0.05)
TIGHT = JournalOptions(
    max_bytes=96 * 1024, segment_bytes=16 * 1024, memory_bytes=0, fsync=FsyncPolicy.NEVER
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    """Pub/sub feeding a journal, as the service wires them."""

    pubsub: PubSub
    journal: Journal

    def publish(self, symbol: str, ids: Sequence[int]) -> None:
        self.pubsub.publish_many(topic(symbol), [trade(symbol, i) for i in ids])

    def sinks(
        self, *sinks: MemorySink, options: RunnerOptions = FAST, clock: Clock | None = None
    ) -> Sinks:
        group = Sinks([(sink, options) for sink in sinks], required=False, clock=clock or Clock())
        group.attach(self.journal)
        return group


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    journal = Journal.open(tmp_path / "journal")
    pubsub = PubSub()
    pubsub.tap(journal.record)
    yield Rig(pubsub, journal)
    journal.close()


@contextlib.asynccontextmanager
async def started(sinks: Sinks) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(sinks.supervisor.run())
    await eventually(lambda: sinks.supervisor.state is ChildState.RUNNING)
    try:
        yield task
    finally:
        await sinks.supervisor.stop()
        await asyncio.wait({task}, timeout=10)


async def test_every_event_reaches_the_sink_in_order(rig: Rig) -> None:
    """Trades published in process reach the sink once each, in order per symbol."""
    sink = MemorySink()
    sinks = rig.sinks(sink)
    async with started(sinks):
        for start in range(0, 300, 30):
            rig.publish("AAA", range(start, start + 30))
            rig.publish("BBB", range(start, start + 30))
            await asyncio.sleep(0)
        await eventually(lambda: len(sink.events) == 600)
        runner = sinks.runners[0]
        assert runner.state is SinkState.UP
        assert runner.stats().healthy
    assert sink.trade_ids("AAA") == list(range(300))
    assert sink.trade_ids("BBB") == list(range(300))
    assert sinks.runners[0].stats().published == 600


async def test_the_sink_gets_the_documents_the_journal_encoded(rig: Rig) -> None:
    """Each event comes with its JSON document, encoded once for every sink."""
    sink = MemorySink()
    async with started(rig.sinks(sink)):
        rig.publish("AAA", range(5))
        await eventually(lambda: len(sink.events) == 5)
    assert sink.payloads == encode_events(sink.events)


async def test_a_broker_down_at_start_delays_nothing_and_gets_everything_later(
    rig: Rig,
) -> None:
    """The sink starts while its destination is down, reports it, and delivers all once up."""
    sink = MemorySink()
    sink.unavailable = True
    sinks = Sinks([(sink, FAST)], required=True)
    sinks.attach(rig.journal)
    async with started(sinks):
        runner = sinks.runners[0]
        rig.publish("AAA", range(100))
        await eventually(lambda: runner.state is SinkState.RETRYING)
        assert not sinks.ready
        assert runner.stats().degraded == "cannot deliver: down"
        sink.unavailable = False
        await eventually(lambda: len(sink.events) == 100)
        assert runner.stats().retries > 0
    assert sink.trade_ids("AAA") == list(range(100))
    assert sink.gaps("AAA") == []


async def test_an_optional_sink_never_makes_the_service_unready(rig: Rig) -> None:
    """Without `required`, a sink that is down is reported but readiness ignores it."""
    sink = MemorySink()
    sink.unavailable = True
    sinks = rig.sinks(sink)
    async with started(sinks):
        await eventually(lambda: sinks.runners[0].state is SinkState.RETRYING)
        assert sinks.ready
        assert not sinks.runners[0].stats().healthy


async def test_a_long_outage_loses_nothing_and_announces_nothing(rig: Rig) -> None:
    """Fifty thousand trades published while the destination is down all arrive once it is
    back, in order, with no gap notice: the journal, not a queue, holds them."""
    sink = MemorySink()
    sinks = rig.sinks(sink)
    async with started(sinks):
        rig.publish("AAA", [0])
        await eventually(lambda: len(sink.events) == 1)
        sink.unavailable = True
        for start in range(1, 50_001, 1000):
            rig.publish("AAA", range(start, start + 1000))
            await asyncio.sleep(0)
        await eventually(lambda: sinks.runners[0].state is SinkState.RETRYING)
        assert sinks.runners[0].stats().lag >= 49_000
        sink.unavailable = False
        await eventually(lambda: len(sink.events) == 50_001, within=60)
        stats = sinks.runners[0].stats()
    assert sink.trade_ids("AAA") == list(range(50_001))
    assert sink.gaps("AAA") == []
    assert (stats.lost, stats.lag) == (0, 0)


async def test_an_unavailable_sink_gets_the_same_batch_again(rig: Rig) -> None:
    """A publish that fails as unavailable is repeated with the same events: nothing is lost."""
    sink = MemorySink()
    sinks = rig.sinks(sink)
    async with started(sinks):
        rig.publish("AAA", range(10))
        await eventually(lambda: len(sink.events) == 10)
        sink.unavailable = True
        rig.publish("AAA", range(10, 20))
        await eventually(lambda: sinks.runners[0].state is SinkState.RETRYING)
        sink.unavailable = False
        await eventually(lambda: len(sink.events) == 20)
    assert sink.trade_ids("AAA") == list(range(20))


async def test_a_refused_batch_is_announced_with_its_exact_ids(rig: Rig) -> None:
    """A batch the destination refuses for good is not retried forever: gap notices name
    exactly its trades, and the sink says it is degraded and why."""
    sink = MemorySink()
    clock = Clock()
    sinks = rig.sinks(sink, clock=clock)
    async with started(sinks):
        rig.publish("AAA", [1])
        await eventually(lambda: sink.trade_ids("AAA") == [1])
        sink.refuse_next = True
        rig.publish("AAA", [2, 3, 5])
        await eventually(lambda: sinks.runners[0].given_up == 1)
        rig.publish("AAA", [6])
        await eventually(lambda: 6 in sink.trade_ids("AAA"))
        stats = sinks.runners[0].stats()
        clock.now += TROUBLE_SECONDS + 1
        later = sinks.runners[0].stats()
    assert sink.trade_ids("AAA") == [1, 6]
    assert sink.gaps("AAA") == [(2, 3), (5, 5)]
    assert stats.lost == 3
    assert stats.degraded is not None
    assert "refused" in stats.degraded
    assert stats.last_error is not None
    assert (later.healthy, later.last_error) == (True, None)


async def test_a_lagging_sink_is_degraded_with_its_lag(rig: Rig) -> None:
    """A sink whose oldest unconfirmed event is older than `max_lag` says so in health."""
    sink = MemorySink()
    clock = Clock()
    sinks = rig.sinks(sink, options=RunnerOptions(max_lag=5.0), clock=clock)
    async with started(sinks):
        rig.publish("AAA", [1])
        await eventually(lambda: len(sink.events) == 1)
        sink.gate.clear()
        rig.publish("AAA", [2, 3])
        await asyncio.sleep(0.05)
        clock.now = rig.journal.appended_at(rig.journal.end - 1) + 10
        stats = sinks.runners[0].stats()
        sink.gate.set()
    assert stats.lag == 2
    assert stats.lag_seconds >= 10
    assert stats.degraded is not None
    assert "2 events behind" in stats.degraded


async def test_a_stalled_sink_does_not_hold_up_another_sink_or_subscriber(rig: Rig) -> None:
    """While one destination hangs, the other sink and an in-process subscriber get everything."""
    stuck, healthy = MemorySink("memory://stuck"), MemorySink("memory://healthy")
    stuck.gate.clear()
    subscriber = rig.pubsub.subscribe(topic("AAA"))
    sinks = rig.sinks(stuck, healthy)
    async with started(sinks):
        rig.publish("AAA", range(50))
        await eventually(lambda: len(healthy.events) == 50)
        assert len(subscriber.get_nowait_batch()) == 50
        assert stuck.events == []
        stuck.gate.set()


async def test_stopping_sends_what_was_not_sent(rig: Rig) -> None:
    """A graceful stop publishes what the sink had not sent before it closes."""
    sink = MemorySink()
    sinks = rig.sinks(sink)
    async with started(sinks):
        rig.publish("AAA", [1])
        await eventually(lambda: sink.trade_ids("AAA") == [1])
        sink.gate.clear()
        rig.publish("AAA", [2])
        await asyncio.sleep(0.05)
        rig.publish("AAA", range(3, 10))
        await asyncio.sleep(0)
        sink.gate.set()
        await sinks.supervisor.stop()
    assert sink.trade_ids("AAA") == list(range(1, 10))
    assert sink.closed == 1


async def test_a_restart_resumes_at_the_committed_cursor(tmp_path: Path) -> None:
    """After the process is gone, a new one sends what the old one had not confirmed, and
    nothing it had."""
    journal = Journal.open(tmp_path / "journal")
    first = MemorySink()
    sinks = Sinks([(first, FAST)], required=False)
    sinks.attach(journal)
    journal.append(events := [trade("AAA", i) for i in range(10)], encode_events(events))
    async with started(sinks):
        await eventually(lambda: len(first.events) == 10)
        first.unavailable = True
        journal.append(more := [trade("AAA", i) for i in range(10, 20)], encode_events(more))
        await eventually(lambda: sinks.runners[0].state is SinkState.RETRYING)
    journal.close()
    journal = Journal.open(tmp_path / "journal")
    second = MemorySink()
    again = Sinks([(second, FAST)], required=False)
    again.attach(journal)
    async with started(again):
        await eventually(lambda: len(second.events) == 10)
    journal.close()
    assert second.trade_ids("AAA") == list(range(10, 20))


@dataclass(frozen=True)
class Row:
    id: int
    price: Decimal
    qty: Decimal
    time: int
    is_buyer_maker: bool


class History:
    """The exchange's trade history, holding only ids from `oldest` on."""

    def __init__(self, oldest: int) -> None:
        self.oldest = oldest
        self.calls = 0

    async def historical_trades(self, symbol: str, from_id: int, limit: int = PAGE) -> list[Row]:
        self.calls += 1
        start = max(from_id, self.oldest)
        return [
            Row(i, Decimal("1.5"), Decimal("0.25"), 1_700_000_000_000 + i, i % 2 == 0)
            for i in range(start, start + limit)
        ]

    async def recent_trades(self, symbol: str, limit: int = PAGE) -> list[Row]:
        return []


async def test_what_the_budget_took_is_re_fetched_and_only_the_rest_announced(
    tmp_path: Path,
) -> None:
    """A sink down while the journal runs out of room gets the lost trades again from the
    exchange's history; what the history no longer has is announced with exact ids."""
    journal = Journal.open(tmp_path / "journal", TIGHT)
    sink = MemorySink()
    sink.unavailable = True
    history = History(oldest=100)
    sinks = Sinks([(sink, FAST)], required=False, history=lambda: history)
    sinks.attach(journal)
    async with started(sinks):
        await eventually(lambda: sinks.runners[0].state is SinkState.RETRYING)
        for start in range(0, 2000, 50):
            journal.append(
                events := [trade("AAA", i) for i in range(start, start + 50)], encode_events(events)
            )
        cursor = sinks.runners[0].cursor
        assert cursor is not None
        (lost,) = cursor.lost["AAA"]
        assert lost[0] == 0
        assert lost[1] > 100
        sink.unavailable = False
        await eventually(lambda: 1999 in sink.trade_ids("AAA"))
        stats = sinks.runners[0].stats()
    journal.close()
    assert sink.trade_ids("AAA") == list(range(100, 2000))
    assert sink.gaps("AAA") == [(0, 99)]
    assert stats.refetched == lost[1] - 100 + 1
    assert stats.lost == 100
    assert history.calls > 0


async def test_the_tree_and_metrics_show_each_sink_and_the_journal(rig: Rig) -> None:
    """Each sink is a child of `sinks` in the tree with its state, and has its own metrics;
    the journal's size and budget are metrics too."""
    sink = MemorySink()
    sinks = rig.sinks(sink)
    async with started(sinks):
        rig.publish("AAA", range(5))
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
    assert tree["journal"]["end"] == 5
    assert 'streamer_sink_published_total{sink="memory://test"} 5.0' in text
    assert 'streamer_sink_up{sink="memory://test"} 1.0' in text
    assert 'streamer_sink_lag_events{sink="memory://test"} 0.0' in text
    assert "streamer_journal_max_bytes " in text


def test_the_same_sink_twice_is_refused() -> None:
    """Two sinks with one name would publish everything twice and share one metric label."""
    with pytest.raises(SinkError, match="twice"):
        Sinks([(MemorySink(), FAST), (MemorySink(), FAST)], required=False)


def test_a_cursor_name_is_a_plain_file_name() -> None:
    """A sink's URL label becomes a cursor file name with no separators in it."""
    assert cursor_name("nats://127.0.0.1:4222") == "nats_127.0.0.1_4222"
    assert cursor_name("parquet:///var/lib/rec") == "parquet_var_lib_rec"


def test_id_ranges_name_runs_of_trade_ids() -> None:
    """Refused trades are announced as the fewest exact runs of ids."""
    assert id_ranges([7, 1, 2, 3, 9, 8]) == [(1, 3), (7, 9)]
    assert id_ranges([]) == []


def test_runner_options_refuse_what_cannot_work() -> None:
    """A batch of zero or a lag limit that is not positive is refused at once."""
    with pytest.raises(ValueError, match="batch"):
        RunnerOptions(batch=0)
    with pytest.raises(ValueError, match="max_lag"):
        RunnerOptions(max_lag=0)
