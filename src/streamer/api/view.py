"""What the API needs of a running service, and nothing more.

The routes, `/ws/trades`, `/ws/live`, the metrics and the resume of a client are written against
this Protocol, not against `streamer.service.Service`: the service builds the API and hands it
itself (it satisfies the Protocol structurally), so the API never imports the composition root
and the two cannot form an import cycle. A test can hand the API anything shaped like this.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import asyncio

    from streamer.api.models import Health, SymbolState
    from streamer.config import Settings
    from streamer.db import SettingsRepository, Status
    from streamer.otp import Registry, Supervisor
    from streamer.ownership import InstanceInfo, Ownership
    from streamer.service.streaming import BulkResult, StartResult, StopResult
    from streamer.sinks.runner import Sinks
    from streamer.stream.hub import StreamHub
    from streamer.stream.pubsub import PubSub


class StreamingControl(Protocol):
    """Changing the running set: the database first, then the workers."""

    async def start_streaming(self, raw_symbol: str) -> StartResult: ...

    async def stop_streaming(self, raw_symbol: str) -> StopResult: ...

    async def start_many(self, raw_symbols: Iterable[str]) -> BulkResult: ...

    async def stop_many(self, raw_symbols: Iterable[str]) -> BulkResult: ...


class ServiceView(Protocol):
    """A running service as the API sees it."""

    @property
    def config(self) -> Settings:
        """Where the API listens and which `Host` names it accepts."""

    @property
    def token(self) -> str | None:
        """The bearer token mutating calls and `/ws/trades` must carry, if one is set."""

    @property
    def repository(self) -> SettingsRepository: ...

    @property
    def streaming(self) -> StreamingControl: ...

    @property
    def root(self) -> Supervisor:
        """The supervision tree, for `/api/tree` and the page's tree tab."""

    @property
    def registry(self) -> Registry:
        """The running workers, by symbol."""

    @property
    def hub(self) -> StreamHub:
        """The engine: live counters, positions, the exchange's history for resumes."""

    @property
    def pubsub(self) -> PubSub: ...

    @property
    def sinks(self) -> Sinks: ...

    @property
    def ownership(self) -> Ownership | None:
        """The leases of this instance; None on SQLite."""

    @property
    def database_ready(self) -> asyncio.Event: ...

    @property
    def database_reached(self) -> asyncio.Event:
        """Set for good once the database was first reached (a later outage clears only
        `database_ready`)."""
        ...

    async def symbol_states(
        self, *, status: Status | None = None, prefix: str | None = None
    ) -> list[SymbolState]: ...

    async def symbol_state(self, symbol: str) -> SymbolState: ...

    async def cluster(self) -> list[InstanceInfo]: ...

    def health(self) -> Health: ...
