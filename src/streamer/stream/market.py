"""What the engine needs from a market, and nothing of how the market speaks.

A market adapter (`streamer.binance.SpotMarket` is one) names its streams, opens connections
that feed the engine's per-symbol channels, and serves the trade history gaps are filled from.
The hub packs symbols onto connections, watches them and restarts them; it never sees a frame.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import msgspec

from streamer.stream.config import EngineConfig
from streamer.stream.pacing import Clock

if TYPE_CHECKING:
    from streamer.stream.channel import SymbolChannel


class ConnectionInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One connection as the status views show it."""

    name: str
    status: str
    """`connecting`, `connected`, `backoff` or `closed`."""
    streams: int
    """Streams it should carry."""
    live: int
    """Streams the exchange confirmed."""
    connects: int
    rotations: int
    sent: int
    malformed: int
    connected_at: float | None


class Connection(Protocol):
    """A socket slot carrying some streams; its `run` reconnects until it carries none."""

    @property
    def name(self) -> str: ...

    @property
    def status(self) -> str: ...

    @property
    def load(self) -> int:
        """How many streams it should carry."""
        ...

    def add(self, streams: Iterable[str]) -> None: ...

    def remove(self, streams: Iterable[str]) -> None: ...

    def resubscribe(self, streams: Iterable[str]) -> None: ...

    def describe(self) -> ConnectionInfo: ...

    async def run(self) -> None: ...


class HistoricalTradeLike(Protocol):
    """One trade of the market's trade history."""

    @property
    def id(self) -> int: ...
    @property
    def price(self) -> Decimal: ...
    @property
    def qty(self) -> Decimal: ...
    @property
    def time(self) -> int: ...
    @property
    def is_buyer_maker(self) -> bool: ...


PAGE = 1000
"""Trades asked for in one history request."""


class TradeHistory(Protocol):
    """Where missing trades come from (the market's REST client)."""

    async def historical_trades(
        self, symbol: str, from_id: int, limit: int = PAGE
    ) -> Sequence[HistoricalTradeLike]: ...

    async def recent_trades(
        self, symbol: str, limit: int = PAGE
    ) -> Sequence[HistoricalTradeLike]: ...


@runtime_checkable
class MarketProbe(Protocol):
    """What tells a dead stream from a quiet market: the latest trade, the symbol's status."""

    async def recent_trades(
        self, symbol: str, limit: int = 1000
    ) -> Sequence[HistoricalTradeLike]: ...

    async def symbol_status(self, symbol: str) -> str: ...


class OwnedHistory(TradeHistory, Protocol):
    """A history the hub made and must close."""

    async def aclose(self) -> None: ...


OnRefused = Callable[["Connection", str], None]
"""Called with a connection and a stream the exchange refused on it."""


class Market(Protocol):
    """One market of one exchange, as the hub drives it."""

    @property
    def config(self) -> EngineConfig: ...

    @property
    def streams_per_connection(self) -> int: ...

    @property
    def history_page_weight(self) -> int:
        """The request weight of one history page, which back-fills budget for."""
        ...

    @property
    def connect_attempts(self) -> int:
        """Connection attempts made so far, for the metrics."""
        ...

    def stream_name(self, symbol: str) -> str: ...

    def symbol_of(self, stream: str) -> str: ...

    def connection(
        self,
        name: str,
        routes: dict[str, SymbolChannel],
        dirty: list[SymbolChannel],
        clock: Clock,
        on_refused: OnRefused,
    ) -> Connection:
        """A new connection whose frames go to `routes[symbol]`; touched channels go on `dirty`."""
        ...

    def history(self) -> OwnedHistory:
        """A new client of the market's trade history, spending from the market's REST budget."""
        ...
