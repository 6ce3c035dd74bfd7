"""Binance spot as the engine sees it: stream names, connections, the REST history, one budget."""

from __future__ import annotations

from streamer.binance.budget import RestBudget
from streamer.binance.config import StreamerConfig
from streamer.binance.connection import ConnectGate, StreamConnection
from streamer.binance.protocol import HISTORICAL_TRADES_WEIGHT, stream_name, symbol_of
from streamer.binance.rest import BinanceRest
from streamer.stream.channel import SymbolChannel
from streamer.stream.market import OnRefused
from streamer.stream.pacing import Clock


class SpotMarket:
    """The `<symbol>@trade` streams of Binance spot and its REST trade history.

    Every connection it opens goes through one `ConnectGate` (the exchange counts connection
    attempts per IP), and every history client it makes spends from one `RestBudget` (the
    exchange counts request weight per IP).
    """

    history_page_weight = HISTORICAL_TRADES_WEIGHT

    def __init__(self, config: StreamerConfig | None = None) -> None:
        self._config = config or StreamerConfig()
        self.budget = RestBudget(self._config.rest_weight_limit)
        self._gate: ConnectGate | None = None

    @property
    def config(self) -> StreamerConfig:
        return self._config

    @property
    def streams_per_connection(self) -> int:
        return self._config.streams_per_connection

    @property
    def gate(self) -> ConnectGate | None:
        """The door every connection goes through, made with the first connection's clock."""
        return self._gate

    @property
    def connect_attempts(self) -> int:
        return 0 if self._gate is None else self._gate.attempts

    def stream_name(self, symbol: str) -> str:
        return stream_name(symbol)

    def symbol_of(self, stream: str) -> str:
        return symbol_of(stream)

    def connection(
        self,
        name: str,
        routes: dict[str, SymbolChannel],
        dirty: list[SymbolChannel],
        clock: Clock,
        on_refused: OnRefused,
    ) -> StreamConnection:
        if self._gate is None:
            self._gate = ConnectGate(self._config, clock)
        return StreamConnection(
            name, self._config, routes, dirty, self._gate, clock, on_refused=on_refused
        )

    def history(self) -> BinanceRest:
        return BinanceRest(self._config.rest_url, budget=self.budget)
