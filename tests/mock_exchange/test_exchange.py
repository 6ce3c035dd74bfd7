"""The mock's exchange: which symbols exist and where their trades come from."""

from __future__ import annotations

import asyncio
import gzip
import os
from pathlib import Path

import pytest

from streamer.mock_exchange.config import SAMPLE_DIR, MockConfig, find_shared_data
from streamer.mock_exchange.data import DataError
from streamer.mock_exchange.exchange import Exchange
from streamer.mock_exchange.exchange_info import BUILTIN_SYMBOLS
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


def test_the_sample_is_named_as_such() -> None:
    """The one-line description says the packaged sample is served, and which symbols it holds."""
    line = Exchange(MockConfig(data_dir=SAMPLE_DIR)).describe_data()
    assert "the sample packaged with streamer" in line
    assert "4 symbols (ADAUSDT, FETUSDT, MATICUSDT, WAVESUSDT)" in line
    assert "the other 5 listed symbols trade synthetically" in line


def test_a_folder_without_trades_says_everything_is_synthetic(tmp_path: Path) -> None:
    """Without trade files the description says every symbol's trades are synthetic."""
    line = Exchange(MockConfig(data_dir=tmp_path)).describe_data()
    assert line.startswith(
        f"no recorded trades in {tmp_path}: all {len(BUILTIN_SYMBOLS)} listed symbols"
    )


def test_every_sample_trade_is_a_recorded_one() -> None:
    """The sample holds real trades: each of its rows is a row of the full recording."""
    shared = find_shared_data()
    if shared is None or not (shared / "trades").is_dir():
        if os.environ.get("CI"):
            pytest.fail("../shared/data/trades is required in CI")
        pytest.skip("../shared/data/trades is absent (recorded trades not available here)")
    for path in (SAMPLE_DIR / "trades").iterdir():
        sample = gzip.decompress(path.read_bytes()).splitlines()
        full = set(gzip.decompress((shared / "trades" / path.name).read_bytes()).splitlines())
        assert len(sample) > 100
        assert set(sample) <= full, path.name
