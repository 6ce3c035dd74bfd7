"""The status views: a setting beside its worker's live counters, health, this instance."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from streamer.db import SettingsRepository, Status
from streamer.db.seed import seed
from streamer.otp import DynamicSupervisor, Registry, Strategy, Supervisor
from streamer.service.views import Views, from_exchange_time
from streamer.sinks.runner import Sinks
from streamer.stream.stats import LiveState, SymbolStats
from tests.service.test_streaming import parked_worker

STARTED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@dataclass
class Parts:
    views: Views
    repository: SettingsRepository
    dynamic: DynamicSupervisor
    registry: Registry
    database_ready: asyncio.Event
    stats: dict[str, SymbolStats] = field(default_factory=dict)


@contextlib.asynccontextmanager
async def parts(engine: AsyncEngine) -> AsyncIterator[Parts]:
    """Views over a real repository and a running (empty) streaming supervisor, with the
    engine's counters stood in for by a dict."""
    await seed(engine, ["ETHUSDT", "BTCUSDT"])
    repository = SettingsRepository(engine)
    registry = Registry("streams")
    dynamic = DynamicSupervisor(name="streamers")
    streaming = Supervisor(
        [dynamic.child_spec("streamers")], strategy=Strategy.ONE_FOR_ONE, name="streaming"
    )
    ready = asyncio.Event()
    stats: dict[str, SymbolStats] = {}
    views = Views(
        repository=repository,
        registry=registry,
        stats=stats.get,
        sinks=Sinks([], required=False),
        streaming=streaming,
        database_ready=ready,
        ownership=None,
        instance_id="here-1",
        address=lambda: "127.0.0.1:8123",
        started=STARTED,
    )
    up = asyncio.Event()
    task = asyncio.create_task(streaming.run(up.set))
    await up.wait()
    try:
        yield Parts(views, repository, dynamic, registry, ready, stats)
    finally:
        await streaming.stop()
        await task


async def test_a_symbol_without_a_worker_is_stopped_whatever_its_status(
    engine: AsyncEngine,
) -> None:
    """The persisted status and the live state are told apart: `on` without a worker is
    `stopped`, and no owner is named on SQLite."""
    async with parts(engine) as running:
        await running.repository.set_status("ETHUSDT", Status.ON)
        state = await running.views.symbol_state("ethusdt")

    assert (state.symbol, state.status, state.state) == ("ETHUSDT", Status.ON, LiveState.STOPPED)
    assert state.owner is None
    assert state.trades == 0


async def test_a_running_worker_shows_its_counters_and_restarts(engine: AsyncEngine) -> None:
    """A worker's live counters are shown with its times as datetimes, prefix filter applied."""
    async with parts(engine) as running:
        await running.dynamic.start_child(parked_worker(running.registry)("ETHUSDT"))
        running.stats["ETHUSDT"] = SymbolStats(
            symbol="ETHUSDT",
            state=LiveState.STREAMING,
            since=1_700_000_000.0,
            trades=7,
            rate=2.5,
            last_trade_id=41,
            last_trade_time=1_700_000_000_123,
            rejected={"price": 1},
        )
        states = await running.views.symbol_states(prefix="ETH")

    assert [s.symbol for s in states] == ["ETHUSDT"]
    state = states[0]
    assert state.state is LiveState.STREAMING
    assert (state.trades, state.rate, state.last_trade_id, state.restarts) == (7, 2.5, 41, 0)
    assert state.since == datetime.fromtimestamp(1_700_000_000.0, UTC)
    assert state.last_trade_time == datetime.fromtimestamp(1_700_000_000.123, UTC)
    assert state.rejected == {"price": 1}


def test_exchange_times_in_ms_or_us_read_alike_and_impossible_ones_are_unknown() -> None:
    """Both units the exchange sends give the same moment; a time no calendar holds is None."""
    ms = from_exchange_time(1_700_000_000_123)
    assert ms == from_exchange_time(1_700_000_000_123_000)
    assert ms == datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)
    assert from_exchange_time(None) is None
    assert from_exchange_time(10**30) is None


async def test_health_is_ready_only_with_the_database_and_streaming_supervised(
    engine: AsyncEngine,
) -> None:
    """Live always; ready once the database answers and the streaming supervisor runs."""
    async with parts(engine) as running:
        before = running.views.health()
        running.database_ready.set()
        after = running.views.health()
    stopped = running.views.health()

    assert (before.live, before.ready, before.database) == (True, False, False)
    assert (after.ready, after.database, after.streaming, after.sinks) == (True, True, 0, [])
    assert not stopped.ready


async def test_on_sqlite_the_cluster_is_this_instance_with_what_it_runs(
    engine: AsyncEngine,
) -> None:
    """Without leases the group is this one instance, at its bound address."""
    async with parts(engine) as running:
        await running.dynamic.start_child(parked_worker(running.registry)("BTCUSDT"))
        (me,) = await running.views.cluster()
        assert await running.views.owners() == {}

    assert (me.id, me.address, me.started, me.symbols) == (
        "here-1",
        "127.0.0.1:8123",
        STARTED,
        ["BTCUSDT"],
    )
