"""The mock's exchange: which symbols exist and where their trades come from."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from streamer.mock_exchange.config import MockConfig
from streamer.mock_exchange.data import DataError
from streamer.mock_exchange.exchange import Exchange
from streamer.mock_exchange.sources import ReplaySource, WalkSource


def test_recorded_symbol_replays_its_data(tiny_data: Path) -> None:
    """A symbol with trade files gets a market replaying them."""
    exchange = Exchange(MockConfig(data_dir=tiny_data))
    market = exchange.market("BNBBTC")
    assert market is not None
    assert isinstance(market.source, ReplaySource)


def test_listed_symbol_without_data_gets_a_walk(tiny_data: Path) -> None:
    """A symbol of the exchangeInfo without files gets synthetic trades."""
    exchange = Exchange(MockConfig(data_dir=tiny_data))
    market = exchange.market("LTCBTC")
    assert market is not None
    assert isinstance(market.source, WalkSource)


def test_unknown_symbol_has_no_market(tiny_data: Path) -> None:
    """A symbol neither listed nor recorded has no market."""
    assert Exchange(MockConfig(data_dir=tiny_data)).market("DOGEBTC") is None


def test_markets_are_created_once(tiny_data: Path) -> None:
    """Every caller gets the same market for a symbol, so they all see one exchange."""
    exchange = Exchange(MockConfig(data_dir=tiny_data))
    assert exchange.market("BNBBTC") is exchange.market("BNBBTC")


def test_without_data_the_builtin_symbols_stream(tmp_path: Path) -> None:
    """With an empty data folder the built-in exchangeInfo's symbols still have markets."""
    exchange = Exchange(MockConfig(data_dir=tmp_path))
    assert exchange.files == {}
    assert exchange.market("BTCUSDT") is not None


async def test_load_reads_a_recording_once(tiny_data: Path) -> None:
    """Concurrent loads of one recorded symbol share one read and one market."""
    exchange = Exchange(MockConfig(data_dir=tiny_data))
    first, second = await asyncio.gather(exchange.load("BNBBTC"), exchange.load("BNBBTC"))
    assert first is not None
    assert first is second
    assert first is exchange.market("BNBBTC")


async def test_load_of_unknown_symbol(tiny_data: Path) -> None:
    """Loading a symbol that does not exist gives no market."""
    assert await Exchange(MockConfig(data_dir=tiny_data)).load("NOPEBTC") is None


def test_missing_data_folder_is_an_error(tmp_path: Path) -> None:
    """A data folder that was asked for but does not exist is refused, not silently ignored."""
    with pytest.raises(DataError, match="does not exist"):
        Exchange(MockConfig(data_dir=tmp_path / "absent"))
