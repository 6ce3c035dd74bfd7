"""What the API and the status page show of a running service, read from its parts on demand.

Nothing here is kept: every view is computed when asked, from the settings (the database), the
registry of running workers and the engine's live counters, so a view can never lag behind or
disagree with what runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

from streamer.api.models import Health, JournalHealth, SinkHealth, SymbolState
from streamer.db import Setting, SettingsRepository, Status
from streamer.otp import ChildState, Registry, Supervisor
from streamer.ownership import InstanceInfo, Ownership
from streamer.sinks.runner import Sinks
from streamer.stream.stats import LiveState, SymbolStats
from streamer.symbols import normalize_symbol


class Views:
    """The service's status views; `stats` reads one symbol's live counters from the engine."""

    def __init__(
        self,
        *,
        repository: SettingsRepository,
        registry: Registry,
        stats: Callable[[str], SymbolStats | None],
        sinks: Sinks,
        streaming: Supervisor,
        database_ready: asyncio.Event,
        ownership: Ownership | None,
        instance_id: str,
        address: Callable[[], str],
        started: datetime,
    ) -> None:
        self._repository = repository
        self._registry = registry
        self._stats = stats
        self._sinks = sinks
        self._streaming = streaming
        self._database_ready = database_ready
        self._ownership = ownership
        self._instance_id = instance_id
        self._address = address
        self._started = started

    async def owners(self) -> dict[str, str]:
        """Symbol -> the instance whose lease it is; none on SQLite, which has no leases."""
        return {} if self._ownership is None else await self._ownership.owners()

    async def cluster(self) -> list[InstanceInfo]:
        """The live instances sharing this database (only this one on SQLite)."""
        if self._ownership is not None:
            return await self._ownership.instances()
        return [
            InstanceInfo(
                id=self._instance_id,
                address=self._address(),
                started=self._started,
                last_seen=datetime.now(UTC),
                symbols=sorted(self._registry.names()),
            )
        ]

    def _state(self, setting: Setting, owner: str | None = None) -> SymbolState:
        child = self._registry.lookup(setting.symbol)
        stats = self._stats(setting.symbol) if child is not None else None
        if child is None or stats is None:
            return SymbolState(
                symbol=setting.symbol, status=setting.status, state=LiveState.STOPPED, owner=owner
            )
        return SymbolState(
            symbol=setting.symbol,
            owner=owner,
            status=setting.status,
            state=stats.state,
            reason=stats.reason,
            since=from_epoch(stats.since),
            restarts=child.restarts,
            trades=stats.trades,
            rate=stats.rate,
            last_trade_id=stats.last_trade_id,
            last_trade_time=from_exchange_time(stats.last_trade_time),
            gaps_filled=stats.gaps_filled,
            gaps_lost=stats.gaps_lost,
            rejected=stats.rejected,
        )

    async def symbol_states(
        self, *, status: Status | None = None, prefix: str | None = None
    ) -> list[SymbolState]:
        settings = await self._repository.list(status=status, prefix=prefix)
        owners = await self.owners()
        return [self._state(setting, owners.get(setting.symbol)) for setting in settings]

    async def symbol_state(self, symbol: str) -> SymbolState:
        setting = await self._repository.get(normalize_symbol(symbol))
        return self._state(setting, (await self.owners()).get(setting.symbol))

    def health(self) -> Health:
        streaming = self._streaming.state is ChildState.RUNNING
        database = self._database_ready.is_set()
        return Health(
            live=True,
            ready=database and streaming and self._sinks.ready,
            database=database,
            streaming=len(self._registry),
            sinks=[
                SinkHealth(
                    name=stats.name,
                    state=str(stats.state),
                    healthy=stats.healthy,
                    degraded=stats.degraded,
                    required=self._sinks.required,
                    lost=stats.lost,
                    refetched=stats.refetched,
                    lag=stats.lag,
                    lag_seconds=round(stats.lag_seconds, 1),
                    last_error=stats.last_error,
                )
                for stats in self._sinks.stats()
            ],
            journal=self._journal(),
        )

    def _journal(self) -> JournalHealth | None:
        journal = self._sinks.journal
        if journal is None:
            return None
        held = journal.stats()
        return JournalHealth(
            path=held.path, size=held.size, max_bytes=held.max_bytes, dropped=held.dropped
        )


def from_epoch(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def from_exchange_time(value: int | None) -> datetime | None:
    """Exchange times are in ms, or in µs on connections that asked for microseconds.

    A time no calendar can hold is shown as unknown rather than failing the whole status view.
    """
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(value / (1_000_000 if value > 10**14 else 1_000), UTC)
    except (OverflowError, OSError, ValueError):
        return None
