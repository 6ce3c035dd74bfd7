"""The mock's exchange: its symbols, and one market per symbol created on first use.

A symbol with recorded trades replays them; any other symbol of the exchangeInfo gets a seeded
random walk, so every listed symbol can stream. Recordings load lazily, in a thread, and once per
process, so that a mock serving 1,695 symbols starts at once and holds only what is asked for.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from streamer.mock_exchange.config import SAMPLE_DIR, MockConfig
from streamer.mock_exchange.data import DataError, load_tape, scan_trade_files
from streamer.mock_exchange.encoding import Encoded, LruCache, Template
from streamer.mock_exchange.exchange_info import load_exchange_info
from streamer.mock_exchange.market import Market
from streamer.mock_exchange.recording import is_recorded, load_recording, scan_recording
from streamer.mock_exchange.sources import ReplaySource, TradeSource, WalkSource


@functools.lru_cache(maxsize=64)
def replay_source(symbol: str, paths: tuple[Path, ...]) -> ReplaySource:
    """A recording read once per process: sources are immutable, so every mock can share them."""
    if is_recorded(paths):
        return ReplaySource(load_recording(symbol, paths))
    return ReplaySource(load_tape(symbol, paths))


ENCODED_BYTES = 128 * 1024 * 1024
TEMPLATE_BYTES = 128 * 1024 * 1024


class Exchange:
    """Symbols, exchangeInfo and markets; no I/O beyond reading the data files."""

    def __init__(
        self,
        config: MockConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.clock = clock
        self.wall_clock = wall_clock
        data_dir = config.resolved_data_dir()
        if not data_dir.is_dir():
            raise DataError(f"data folder {data_dir} does not exist")
        self.data_dir = data_dir
        self.files = scan_trade_files(data_dir) | scan_recording(data_dir)
        self.info = load_exchange_info(config.exchange_info, data_dir)
        self.listed: dict[str, dict[str, Any]] = {s["symbol"]: s for s in self.info["symbols"]}
        self.started = clock()
        self._start_us = int(wall_clock() * 1000) * 1000
        self._cache: LruCache[Encoded] = LruCache(ENCODED_BYTES)
        self._templates: LruCache[Template] = LruCache(TEMPLATE_BYTES)
        self._markets: dict[str, Market] = {}
        self._loading: dict[str, asyncio.Future[TradeSource]] = {}

    @property
    def markets(self) -> Mapping[str, Market]:
        """The markets created so far, by symbol."""
        return MappingProxyType(self._markets)

    def knows(self, symbol: str) -> bool:
        return symbol in self.listed or symbol in self.files

    def market(self, symbol: str) -> Market | None:
        """The market of an upper-case symbol, created on first use; None for unknown symbols."""
        market = self._markets.get(symbol)
        if market is None and self.knows(symbol):
            market = self._markets[symbol] = self._market_of(self._source(symbol))
        return market

    async def load(self, symbol: str) -> Market | None:
        """Like `market`, but a recording is read in a thread so the server keeps serving."""
        if symbol in self._markets or symbol not in self.files:
            return self.market(symbol)
        loading = self._loading.get(symbol)
        if loading is None:
            loading = asyncio.ensure_future(asyncio.to_thread(self._source, symbol))
            self._loading[symbol] = loading
        source = await asyncio.shield(loading)
        self._loading.pop(symbol, None)
        if symbol not in self._markets:
            self._markets[symbol] = self._market_of(source)
        return self._markets[symbol]

    def _market_of(self, source: TradeSource) -> Market:
        return Market(
            source,
            speed=self.config.speed,
            started=self.started,
            clock=self.clock,
            cache=self._cache,
            templates=self._templates,
            start_us=self._start_us,
        )

    def _source(self, symbol: str) -> TradeSource:
        paths = self.files.get(symbol)
        if paths:
            return replay_source(symbol, tuple(paths))
        return WalkSource(
            symbol,
            seed=self.config.seed,
            rate=self.config.synthetic_rate,
            start_us=self._start_us,
        )

    def describe_data(self) -> str:
        """One line saying what this exchange replays, so nobody mistakes synthetic trades for
        recorded ones or the packaged sample for the full recording."""
        if not self.files:
            return (
                f"no recorded trades in {self.data_dir}: all {len(self.listed)} listed symbols "
                "trade synthetically (a seeded random walk)"
            )
        where = (
            "the sample packaged with streamer"
            if self.data_dir.resolve() == SAMPLE_DIR
            else str(self.data_dir)
        )
        return (
            f"replaying recorded trades of {len(self.files)} symbols "
            f"({', '.join(sorted(self.files))}) from {where}; the other "
            f"{len(self.listed.keys() - self.files.keys())} listed symbols trade synthetically"
        )

    def now_ms(self) -> int:
        return int(self.wall_clock() * 1000)
