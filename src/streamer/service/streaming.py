"""Start, stop and autostart streaming: the service's one place that changes the running set.

The database is the source of truth and is always written first. If that write fails the
operation fails and the running set is left exactly as it was; if it succeeds, the running set is
brought in line with it. A crash between the two leaves the database ahead of the running set,
and the next autostart (on restart of the dynamic supervisor, or of the service) closes the gap.
Operations on one symbol are serialised, so a concurrent start and stop cannot interleave their
database write and their supervisor call.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from streamer.db import DatabaseUnavailable, SettingsRepository, Status, UnknownSymbol
from streamer.errors import StreamingUnavailable
from streamer.otp import (
    AlreadyStarted,
    ChildSpec,
    ChildState,
    DynamicSupervisor,
    Registry,
    Restart,
    Started,
    StartError,
)
from streamer.symbols import normalize_symbol

log = logging.getLogger(__name__)

WorkerSpec = Callable[[str], ChildSpec]
"""Builds the supervised worker of one symbol; its spec must be named `(registry, SYMBOL)`."""


class Placement(Protocol):
    """Which instance runs which symbol when several share one database (`streamer.ownership`).

    With a placement, start and stop only write the database and `announce()` the change: the
    owner of the symbol's lease, whichever instance that is, starts or stops its worker.
    """

    async def owned(self) -> list[str]:
        """The symbols this instance owns: what it must run."""
        ...

    async def announce(self) -> None: ...

    async def owner(self, symbol: str) -> str | None: ...


@dataclass(frozen=True)
class StartResult:
    """`already_running`: a worker was running before the call, and was left as it was."""

    symbol: str
    already_running: bool


@dataclass(frozen=True)
class StopResult:
    """`was_running`: a worker was terminated (otherwise the call only persisted `off`)."""

    symbol: str
    was_running: bool


@dataclass(frozen=True)
class BulkResult:
    """One call over many symbols: which changed (started or stopped), which already were as
    asked, and which failed (with why); in the order they were given."""

    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AutostartReport:
    """Which enabled symbols autostart started, found running, or could not start (and why)."""

    started: list[str] = field(default_factory=list)
    already_running: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


class Streaming:
    """Start/stop/autostart over a dynamic supervisor of workers found through a registry.

    `wait_ready` holds autostart back until the database is usable; `on_stopped(symbol)` runs
    after a user's stop, so the streaming engine can drop what it kept to resume that symbol
    (a stop ends a stream on purpose: the next start begins afresh, not with a back-fill).
    """

    def __init__(
        self,
        *,
        repository: SettingsRepository,
        supervisor: DynamicSupervisor,
        registry: Registry,
        worker_spec: WorkerSpec,
        wait_ready: Callable[[], Awaitable[object]] | None = None,
        on_stopped: Callable[[str], None] | None = None,
        autostart_concurrency: int = 64,
        database_retry_seconds: float = 2.0,
        placement: Placement | None = None,
    ) -> None:
        self._repository = repository
        self._supervisor = supervisor
        self._registry = registry
        self._worker_spec = worker_spec
        self._wait_ready = wait_ready
        self._on_stopped = on_stopped
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._changes: dict[str, int] = {}
        self._autostart_concurrency = autostart_concurrency
        self._database_retry_seconds = database_retry_seconds
        self.placement = placement

    async def start_streaming(self, raw_symbol: str) -> StartResult:
        """Persist `on`, then make sure a worker runs; unknown symbols change nothing.

        A worker that fails to start puts the status back as it was, so the failed call leaves
        no trace in either place.
        """
        result = await self._start(normalize_symbol(raw_symbol))
        if result.already_running:
            log.warning("Streaming on %s already started", result.symbol)
        else:
            log.info("Started streaming on %s", result.symbol)
        return result

    async def stop_streaming(self, raw_symbol: str) -> StopResult:
        """Persist `off`, then terminate the worker if one runs."""
        result = await self._stop(normalize_symbol(raw_symbol))
        if result.was_running:
            log.info("Stopped streaming on %s", result.symbol)
        else:
            log.warning("Streaming on %s already stopped", result.symbol)
        return result

    async def start_many(self, raw_symbols: Iterable[str]) -> BulkResult:
        """`start_streaming` for many symbols at once, logged as one line.

        Every symbol is checked before anything changes, so one unknown or malformed symbol
        fails the whole call; a worker that fails to start is reported and the others go on.
        """
        report = await self._many(raw_symbols, self._start_changed)
        log.info(
            "Started streaming on %d symbols (%d already running, %d failed)",
            len(report.changed),
            len(report.unchanged),
            len(report.failed),
        )
        return report

    async def stop_many(self, raw_symbols: Iterable[str]) -> BulkResult:
        """`stop_streaming` for many symbols at once, logged as one line; all checked first."""
        report = await self._many(raw_symbols, self._stop_changed)
        log.info(
            "Stopped streaming on %d symbols (%d were not running)",
            len(report.changed),
            len(report.unchanged),
        )
        return report

    async def _start_changed(self, symbol: str) -> bool:
        return not (await self._start(symbol)).already_running

    async def _stop_changed(self, symbol: str) -> bool:
        return (await self._stop(symbol)).was_running

    async def _many(
        self, raw_symbols: Iterable[str], change: Callable[[str], Awaitable[bool]]
    ) -> BulkResult:
        symbols = list(dict.fromkeys(normalize_symbol(raw) for raw in raw_symbols))
        if self._supervisor.state is not ChildState.RUNNING:
            raise StreamingUnavailable(
                "streaming is restarting after a failure; nothing was changed, "
                "try again in a moment"
            )
        known = await self._repository.symbols()
        unknown = [symbol for symbol in symbols if symbol not in known]
        if unknown:
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            raise UnknownSymbol(", ".join(unknown[:5]) + more)
        gate = asyncio.Semaphore(self._autostart_concurrency)
        outcome: dict[str, bool | str] = {}

        async def one(symbol: str) -> None:
            async with gate:
                try:
                    outcome[symbol] = await change(symbol)
                except (StartError, StreamingUnavailable) as error:
                    outcome[symbol] = str(error)

        await asyncio.gather(*(one(symbol) for symbol in symbols))
        report = BulkResult()
        for symbol in symbols:
            result = outcome[symbol]
            if isinstance(result, str):
                report.failed[symbol] = result
            else:
                (report.changed if result else report.unchanged).append(symbol)
        return report

    async def _start(self, symbol: str) -> StartResult:
        if self.placement is not None:
            return await self._start_in_group(symbol, self.placement)
        async with self._lock(symbol):
            before = await self._repository.get(symbol)
            if self._supervisor.state is not ChildState.RUNNING:
                raise StreamingUnavailable(
                    f"streaming is restarting after a failure; {symbol} was not started, "
                    "try again in a moment"
                )
            await self._repository.set_status(symbol, Status.ON)
            self._changed(symbol)
            try:
                already_running = await self._ensure_running(symbol)
            except StartError:
                await self._repository.set_status(symbol, before.status)
                raise
            return StartResult(symbol, already_running)

    async def _start_in_group(self, symbol: str, placement: Placement) -> StartResult:
        """Persist `on` and announce it; the lease owner (this instance if it can take it
        now) starts the worker. The announcement runs outside the symbol's lock, since this
        instance's own round takes that lock to start the worker."""
        async with self._lock(symbol):
            before = await self._repository.get(symbol)
            await self._repository.set_status(symbol, Status.ON)
            self._changed(symbol)
        await placement.announce()
        log.info("Enabled %s; its lease owner streams it", symbol)
        return StartResult(symbol, already_running=before.status is Status.ON)

    async def _stop(self, symbol: str) -> StopResult:
        async with self._lock(symbol):
            await self._repository.get(symbol)
            owner = None if self.placement is None else await self.placement.owner(symbol)
            await self._repository.set_status(symbol, Status.OFF)
            self._changed(symbol)
            child = self._registry.lookup(symbol)
            if child is not None:
                await self._supervisor.terminate_child(child)
            if self._on_stopped is not None:
                self._on_stopped(symbol)
        if self.placement is not None:
            await self.placement.announce()
        return StopResult(symbol, was_running=child is not None or owner is not None)

    async def autostart_streaming(self) -> AutostartReport:
        """Start every symbol whose status is `on`; one that fails to start does not stop the rest.

        Starts run concurrently (bounded) because each worker's start only queues its
        subscription: the connections batch them within the exchange's message limits. A symbol
        started or stopped by a call since the list was read is left to that call, which is
        newer: otherwise a stop racing autostart could be undone by a start from the old list.
        """
        seen = dict(self._changes)
        if self.placement is not None:
            symbols = await self.placement.owned()
        else:
            symbols = await self._repository.enabled_symbols()
        report = AutostartReport()

        async def start_one(symbol: str) -> None:
            async with self._lock(symbol):
                if self._changes.get(symbol) != seen.get(symbol):
                    return
                try:
                    if await self._ensure_running(symbol):
                        report.already_running.append(symbol)
                    else:
                        report.started.append(symbol)
                except StartError as error:
                    report.failed[symbol] = str(error)
                    log.error("Autostart of %s failed: %s", symbol, error)

        await self._each(symbols, start_one)
        log.info(
            "Autostart: %d started, %d already running, %d failed",
            len(report.started),
            len(report.already_running),
            len(report.failed),
        )
        return report

    async def reconcile(self, wanted: set[str], keep: set[str]) -> None:
        """Run exactly `wanted` (plus `keep`, left running if it runs): the leases this
        instance holds. A symbol that moved away is stopped without touching its status; what
        it kept to resume is dropped, since its new owner resumes from the database."""
        if self._supervisor.state is not ChildState.RUNNING:
            return
        running = set(self._registry.names())

        async def stop_one(symbol: str) -> None:
            async with self._lock(symbol):
                child = self._registry.lookup(symbol)
                if child is not None and symbol not in wanted:
                    log.info("Stopping %s: this instance no longer owns it", symbol)
                    await self._supervisor.terminate_child(child)
                    if self._on_stopped is not None:
                        self._on_stopped(symbol)

        async def start_one(symbol: str) -> None:
            async with self._lock(symbol):
                try:
                    await self._ensure_running(symbol)
                except StartError as error:
                    log.error("Could not start %s: %s", symbol, error)

        await self._each(sorted(running - wanted - keep), stop_one)
        await self._each(sorted(wanted - running), start_one)

    async def _each(self, symbols: list[str], action: Callable[[str], Awaitable[None]]) -> None:
        """`action` on every symbol, concurrently but bounded."""
        gate = asyncio.Semaphore(self._autostart_concurrency)

        async def one(symbol: str) -> None:
            async with gate:
                await action(symbol)

        await asyncio.gather(*(one(symbol) for symbol in symbols))

    def autostart_spec(self, restart: Restart = Restart.TRANSIENT) -> ChildSpec:
        """The autostart child: transient, so it runs again whenever its supervisor restarts it.

        A database that is down is waited for here rather than crashed on: crashing would burn
        the supervisor's restart intensity and turn an outage into an escalation.
        """

        async def autostart(started: Started) -> None:
            started()
            if self._wait_ready is not None:
                await self._wait_ready()
            while True:
                try:
                    await self.autostart_streaming()
                except DatabaseUnavailable as error:
                    log.warning(
                        "Autostart waits for the database (%s); retrying in %.0f s",
                        error,
                        self._database_retry_seconds,
                    )
                    await asyncio.sleep(self._database_retry_seconds)
                else:
                    return

        return ChildSpec(id="autostart", start=autostart, restart=restart)

    async def _ensure_running(self, symbol: str) -> bool:
        """Start the symbol's worker unless its name is taken; True when one was already running.

        A name held by an abandoned worker (stopped, but still ending) is a failed start, not a
        running worker: that one is going away.
        """
        try:
            await self._supervisor.start_child(self._worker_spec(symbol))
        except AlreadyStarted as taken:
            if taken.child.state is ChildState.ABANDONED:
                raise
            return True
        return False

    def _changed(self, symbol: str) -> None:
        self._changes[symbol] = self._changes.get(symbol, 0) + 1

    def _lock(self, symbol: str) -> asyncio.Lock:
        """The symbol's lock, alive only while someone holds or waits for it.

        Weakly held, so that well-formed symbols that are not in the settings cannot grow the
        table: each call checks the symbol only once it holds the lock.
        """
        lock = self._locks.get(symbol)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[symbol] = lock
        return lock
