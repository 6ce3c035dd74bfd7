"""start_streaming, stop_streaming and autostart_streaming over real supervisors and databases.

Workers here are stand-ins that only park (the streaming engine has tests of its own): what is
under test is how the running set and the database move together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from streamer.db import DatabaseUnavailable, Setting, SettingsRepository, Status, UnknownSymbol
from streamer.db.seed import seed
from streamer.errors import StreamingUnavailable
from streamer.otp import (
    ChildSpec,
    ChildState,
    DynamicSupervisor,
    Registry,
    Started,
    StartError,
    Strategy,
    Supervisor,
)
from streamer.service.streaming import Streaming
from streamer.symbols import InvalidSymbol
from tests.otp.probes import deaf_until
from tests.polling import eventually

SYMBOLS = ["ETHUSDT", "NEOUSDT", "BTCUSDT", "ADAUSDT"]


def parked_worker(
    registry: Registry, fail: frozenset[str] = frozenset()
) -> Callable[[str], ChildSpec]:
    """Worker specs that start and park; those of `fail` crash during their start."""

    def spec(symbol: str) -> ChildSpec:
        async def body(started: Started) -> None:
            if symbol in fail:
                raise RuntimeError(f"{symbol} cannot start")
            started()
            await asyncio.Future()

        return ChildSpec(id=symbol, start=body, name=(registry, symbol))

    return spec


class FlakyRepository(SettingsRepository):
    """A repository whose writes (or reads of enabled symbols) fail while `down` is set."""

    def __init__(self, engine: AsyncEngine, enabled_failures: int = 0) -> None:
        super().__init__(engine)
        self.down_writes = False
        self.enabled_failures = enabled_failures
        self.enabled_read = asyncio.Event()
        self.hold_enabled: asyncio.Event | None = None

    async def set_status(self, symbol: str, status: Status) -> Setting:
        if self.down_writes:
            raise DatabaseUnavailable("database at 127.0.0.1:1 refused the connection")
        return await super().set_status(symbol, status)

    async def enabled_symbols(self) -> list[str]:
        if self.enabled_failures > 0:
            self.enabled_failures -= 1
            raise DatabaseUnavailable("database at 127.0.0.1:1 refused the connection")
        symbols = await super().enabled_symbols()
        self.enabled_read.set()
        if self.hold_enabled is not None:
            await self.hold_enabled.wait()
        return symbols


@dataclass
class Tree:
    repository: FlakyRepository
    registry: Registry
    dynamic: DynamicSupervisor
    streaming: Streaming
    supervisor: Supervisor
    stopped: list[str]


@contextlib.asynccontextmanager
async def build(
    engine: AsyncEngine,
    fail: frozenset[str] = frozenset(),
    *,
    autostart: bool = True,
    enabled_failures: int = 0,
    ready: Callable[[], Awaitable[object]] | None = None,
) -> AsyncIterator[Tree]:
    await seed(engine, SYMBOLS)
    repository = FlakyRepository(engine, enabled_failures)
    stopped: list[str] = []
    registry = Registry("streams")
    dynamic = DynamicSupervisor(name="streamers")
    streaming = Streaming(
        repository=repository,
        supervisor=dynamic,
        registry=registry,
        worker_spec=parked_worker(registry, fail),
        wait_ready=ready,
        on_stopped=stopped.append,
        database_retry_seconds=0.01,
    )
    children = [dynamic.child_spec("streamers")]
    if autostart:
        children.append(streaming.autostart_spec())
    supervisor = Supervisor(children, strategy=Strategy.REST_FOR_ONE, name="streaming")
    up = asyncio.Event()
    task = asyncio.create_task(supervisor.run(up.set))
    await up.wait()
    try:
        yield Tree(repository, registry, dynamic, streaming, supervisor, stopped)
    finally:
        await supervisor.stop()
        await task


@pytest.fixture
async def tree(engine: AsyncEngine) -> AsyncIterator[Tree]:
    async with build(engine) as built:
        yield built


async def statuses(repository: SettingsRepository) -> dict[str, Status]:
    return {setting.symbol: setting.status for setting in await repository.list()}


async def test_start_normalises_the_symbol_persists_on_and_starts_a_named_worker(
    tree: Tree,
) -> None:
    """`start_streaming(" ethusdt ")` sets ETHUSDT on and registers a worker under ETHUSDT."""
    result = await tree.streaming.start_streaming(" ethusdt ")

    assert (result.symbol, result.already_running) == ("ETHUSDT", False)
    assert (await tree.repository.get("ETHUSDT")).status is Status.ON
    child = tree.registry.lookup("ETHUSDT")
    assert child is not None
    assert child.state is ChildState.RUNNING


async def test_starting_a_running_symbol_keeps_its_worker_and_warns(
    tree: Tree, caplog: pytest.LogCaptureFixture
) -> None:
    """A second start returns the running worker untouched, logs a warning, and keeps `on`."""
    await tree.streaming.start_streaming("ETHUSDT")
    first = tree.registry.lookup("ETHUSDT")

    with caplog.at_level(logging.WARNING, logger="streamer.service.streaming"):
        result = await tree.streaming.start_streaming("ethusdt")

    assert result.already_running
    assert tree.registry.lookup("ETHUSDT") is first
    assert tree.dynamic.count_children()["active"] == 1
    assert "Streaming on ETHUSDT already started" in caplog.text
    assert (await tree.repository.get("ETHUSDT")).status is Status.ON


async def test_starting_an_unknown_symbol_fails_and_changes_nothing(tree: Tree) -> None:
    """A symbol missing from the settings raises UnknownSymbol; no worker, no write."""
    before = await statuses(tree.repository)

    with pytest.raises(UnknownSymbol, match="XRPUSDT"):
        await tree.streaming.start_streaming("xrpusdt")

    assert tree.registry.names() == []
    assert await statuses(tree.repository) == before


async def test_starting_a_malformed_symbol_fails_before_touching_anything(tree: Tree) -> None:
    """A symbol that cannot be a Binance symbol raises InvalidSymbol."""
    with pytest.raises(InvalidSymbol):
        await tree.streaming.start_streaming("eth$usdt")

    assert tree.registry.names() == []


async def test_stop_terminates_the_worker_and_persists_off(tree: Tree) -> None:
    """Stopping a streaming symbol removes its worker for good and sets it off."""
    await tree.streaming.start_streaming("ETHUSDT")

    result = await tree.streaming.stop_streaming("ethusdt")

    assert result.was_running
    assert tree.registry.lookup("ETHUSDT") is None
    assert tree.dynamic.count_children()["active"] == 0
    assert (await tree.repository.get("ETHUSDT")).status is Status.OFF


async def test_a_stop_tells_the_engine_to_forget_the_symbol(tree: Tree) -> None:
    """Every stop, of a running symbol or not, reports the symbol to `on_stopped`."""
    await tree.streaming.start_streaming("ETHUSDT")

    await tree.streaming.stop_streaming("ETHUSDT")
    await tree.streaming.stop_streaming("NEOUSDT")

    assert tree.stopped == ["ETHUSDT", "NEOUSDT"]


async def test_autostart_waits_until_the_database_is_ready(engine: AsyncEngine) -> None:
    """Autostart reads nothing before `wait_ready` returns, then starts the enabled symbols."""
    await seed(engine, SYMBOLS)
    await SettingsRepository(engine).set_status("ETHUSDT", Status.ON)
    waiting, ready = asyncio.Event(), asyncio.Event()

    async def wait_ready() -> None:
        waiting.set()
        await ready.wait()

    async with build(engine, ready=wait_ready) as tree:
        await waiting.wait()
        assert not tree.repository.enabled_read.is_set()

        ready.set()

        await eventually(lambda: "ETHUSDT" in tree.registry.names())


async def test_stopping_a_stopped_symbol_warns_and_persists_off(
    tree: Tree, caplog: pytest.LogCaptureFixture
) -> None:
    """Stopping a symbol with no worker logs a warning and still sets it off."""
    await tree.repository.set_status("ETHUSDT", Status.ON)

    with caplog.at_level(logging.WARNING, logger="streamer.service.streaming"):
        result = await tree.streaming.stop_streaming("ETHUSDT")

    assert not result.was_running
    assert "Streaming on ETHUSDT already stopped" in caplog.text
    assert (await tree.repository.get("ETHUSDT")).status is Status.OFF


async def test_a_failed_database_write_starts_no_worker(tree: Tree) -> None:
    """When `on` cannot be written, start fails and the running set stays as it was."""
    tree.repository.down_writes = True

    with pytest.raises(DatabaseUnavailable):
        await tree.streaming.start_streaming("ETHUSDT")

    assert tree.registry.lookup("ETHUSDT") is None


async def test_a_failed_database_write_keeps_the_worker_running(tree: Tree) -> None:
    """When `off` cannot be written, stop fails and the worker keeps streaming."""
    await tree.streaming.start_streaming("ETHUSDT")
    worker = tree.registry.lookup("ETHUSDT")
    tree.repository.down_writes = True

    with pytest.raises(DatabaseUnavailable):
        await tree.streaming.stop_streaming("ETHUSDT")

    assert tree.registry.lookup("ETHUSDT") is worker
    assert worker is not None
    assert worker.state is ChildState.RUNNING


async def test_a_worker_that_cannot_start_leaves_the_status_as_it_was(engine: AsyncEngine) -> None:
    """A start whose worker fails to start raises StartError and restores the old status."""
    async with build(engine, fail=frozenset({"NEOUSDT"})) as tree:
        with pytest.raises(StartError, match="NEOUSDT cannot start"):
            await tree.streaming.start_streaming("NEOUSDT")

        assert (await tree.repository.get("NEOUSDT")).status is Status.OFF
        assert tree.registry.lookup("NEOUSDT") is None


async def test_autostart_starts_every_enabled_symbol_and_only_those(engine: AsyncEngine) -> None:
    """Autostart on a fresh tree starts exactly the symbols whose status is on."""
    await seed(engine, SYMBOLS)
    repository = SettingsRepository(engine)
    for symbol in ("ETHUSDT", "NEOUSDT"):
        await repository.set_status(symbol, Status.ON)

    async with build(engine) as tree:
        await eventually(lambda: {"ETHUSDT", "NEOUSDT"} <= set(tree.registry.names()))
        assert sorted(tree.registry.names()) == ["ETHUSDT", "NEOUSDT"]


async def test_one_symbol_failing_to_start_does_not_stop_autostart(engine: AsyncEngine) -> None:
    """A symbol whose worker cannot start is reported failed; the others start."""
    async with build(engine, fail=frozenset({"NEOUSDT"}), autostart=False) as tree:
        for symbol in ("ETHUSDT", "NEOUSDT", "BTCUSDT"):
            await tree.repository.set_status(symbol, Status.ON)

        report = await tree.streaming.autostart_streaming()

        assert sorted(report.started) == ["BTCUSDT", "ETHUSDT"]
        assert list(report.failed) == ["NEOUSDT"]
        assert "NEOUSDT cannot start" in report.failed["NEOUSDT"]
        assert sorted(tree.registry.names()) == ["BTCUSDT", "ETHUSDT"]


async def test_a_stop_racing_autostart_is_not_undone(engine: AsyncEngine) -> None:
    """A symbol stopped after autostart read its list stays stopped, in both places."""
    async with build(engine, autostart=False) as tree:
        await tree.repository.set_status("ETHUSDT", Status.ON)
        tree.repository.hold_enabled = asyncio.Event()
        autostart = asyncio.create_task(tree.streaming.autostart_streaming())
        await tree.repository.enabled_read.wait()

        await tree.streaming.stop_streaming("ETHUSDT")
        tree.repository.hold_enabled.set()
        report = await autostart

        assert report.started == []
        assert tree.registry.lookup("ETHUSDT") is None
        assert (await tree.repository.get("ETHUSDT")).status is Status.OFF


async def test_autostart_waits_for_the_database_instead_of_crashing(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    """Autostart retries while the database is down, then starts the enabled symbols."""
    await seed(engine, SYMBOLS)
    await SettingsRepository(engine).set_status("ETHUSDT", Status.ON)
    with caplog.at_level(logging.WARNING, logger="streamer.service.streaming"):
        async with build(engine, enabled_failures=2) as tree:
            await eventually(lambda: "ETHUSDT" in tree.registry.names())
            assert tree.supervisor.describe()["recent_restarts"] == 0
    assert "Autostart waits for the database" in caplog.text


async def test_a_crashed_dynamic_supervisor_is_refilled_by_autostart(tree: Tree) -> None:
    """After the dynamic supervisor crashes and restarts empty, every enabled symbol runs again."""
    await tree.streaming.start_streaming("ETHUSDT")
    await tree.streaming.start_streaming("NEOUSDT")
    await tree.streaming.start_streaming("BTCUSDT")
    await tree.streaming.stop_streaming("BTCUSDT")
    old = tree.registry.lookup("ETHUSDT")
    dynamic = next(c for c in tree.supervisor.which_children() if c.id == "streamers")

    dynamic.kill(RuntimeError("injected crash"))
    await eventually(lambda: dynamic.restarts == 1)
    await eventually(lambda: {"ETHUSDT", "NEOUSDT"} <= set(tree.registry.names()))

    assert sorted(tree.registry.names()) == ["ETHUSDT", "NEOUSDT"]
    assert tree.registry.lookup("ETHUSDT") is not old


async def test_concurrent_start_and_stop_leave_database_and_workers_in_agreement(
    tree: Tree,
) -> None:
    """Interleaved starts and stops of one symbol end with the status matching the worker."""
    calls = [
        tree.streaming.start_streaming("ETHUSDT")
        if i % 2 == 0
        else tree.streaming.stop_streaming("ETHUSDT")
        for i in range(21)
    ]

    await asyncio.gather(*calls)

    running = tree.registry.lookup("ETHUSDT") is not None
    status = (await tree.repository.get("ETHUSDT")).status
    assert running == (status is Status.ON)


async def test_a_start_while_the_dynamic_supervisor_restarts_changes_nothing(
    engine: AsyncEngine,
) -> None:
    """With the dynamic supervisor down, start raises StreamingUnavailable and leaves `off`."""
    await seed(engine, SYMBOLS)
    repository = SettingsRepository(engine)
    registry = Registry("streams")
    streaming = Streaming(
        repository=repository,
        supervisor=DynamicSupervisor(name="streamers"),
        registry=registry,
        worker_spec=parked_worker(registry),
    )

    with pytest.raises(StreamingUnavailable, match="try again"):
        await streaming.start_streaming("ETHUSDT")

    assert (await repository.get("ETHUSDT")).status is Status.OFF


async def test_starting_a_symbol_whose_stopped_worker_is_still_ending_fails_and_keeps_off(
    engine: AsyncEngine,
) -> None:
    """A start while the stopped worker was abandoned still running (deaf even to its kill)
    fails, starts no second worker and leaves the symbol off, instead of reporting it already
    running."""
    await seed(engine, SYMBOLS)
    repository = SettingsRepository(engine)
    registry = Registry("streams")
    release = asyncio.Event()
    starts = 0

    def stubborn(symbol: str) -> ChildSpec:
        async def body(started: Started) -> None:
            nonlocal starts
            starts += 1
            started()
            try:
                await asyncio.Future()
            finally:
                await deaf_until(release)

        return ChildSpec(id=symbol, start=body, shutdown=0.01, name=(registry, symbol))

    dynamic = DynamicSupervisor(name="streamers")
    streaming = Streaming(
        repository=repository, supervisor=dynamic, registry=registry, worker_spec=stubborn
    )
    up = asyncio.Event()
    task = asyncio.create_task(dynamic.run(up.set))
    await up.wait()
    await streaming.start_streaming("ETHUSDT")
    await streaming.stop_streaming("ETHUSDT")

    with pytest.raises(StartError, match="abandoned"):
        await streaming.start_streaming("ETHUSDT")

    assert starts == 1
    assert (await repository.get("ETHUSDT")).status is Status.OFF
    release.set()
    await dynamic.stop()
    await task


async def test_a_bulk_start_logs_one_summary_line(
    tree: Tree, caplog: pytest.LogCaptureFixture
) -> None:
    """Starting many symbols in one call starts each and logs one line, not one per symbol."""
    symbols = sorted(await tree.repository.symbols())

    with caplog.at_level(logging.INFO, logger="streamer.service.streaming"):
        report = await tree.streaming.start_many(s.lower() for s in symbols)

    assert sorted(report.changed) == symbols
    assert sorted(tree.registry.names()) == symbols
    lines = [r.getMessage() for r in caplog.records if r.name == "streamer.service.streaming"]
    assert [line for line in lines if not line.startswith("Autostart")] == [
        f"Started streaming on {len(symbols)} symbols (0 already running, 0 failed)"
    ]
