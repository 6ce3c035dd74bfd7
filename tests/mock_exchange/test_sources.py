"""Endless trade sequences: a looped recording and a seeded random walk."""

from __future__ import annotations

from pathlib import Path

from streamer.mock_exchange.data import load_tape, scan_trade_files
from streamer.mock_exchange.sources import WALK_CHUNK, ReplaySource, Trades, WalkSource


def replay(tiny_data: Path) -> ReplaySource:
    return ReplaySource(load_tape("BNBBTC", scan_trade_files(tiny_data)["BNBBTC"]))


def all_ids(trades: Trades) -> list[int]:
    return list(range(trades.first_id, trades.first_id + len(trades)))


def test_loop_continues_ids_without_repeats(tiny_data: Path) -> None:
    """The second pass over a recording carries the ids that follow the first pass's last id."""
    source = replay(tiny_data)
    first, second = source.chunk(0), source.chunk(1)
    assert all_ids(first) == list(range(100, 110))
    assert all_ids(second) == list(range(110, 120))
    assert second.statics.price == first.statics.price


def test_loop_continues_times(tiny_data: Path) -> None:
    """Times of the next pass are later than every time of the previous one, in ms and in µs."""
    source = replay(tiny_data)
    for micro in (False, True):
        first, second = source.chunk(0).times(micro), source.chunk(1).times(micro)
        assert second.trade[0] > first.trade[-1]
        assert second.event[0] - first.event[0] == second.trade[0] - first.trade[0]
    assert source.chunk(0).times(False).trade[0] * 1000 == source.chunk(0).times(True).trade[0]


def test_chunk_of_finds_the_chunk_holding_an_index(tiny_data: Path) -> None:
    """Index i lies in chunk `chunk_of(i)`, across loop boundaries."""
    source = replay(tiny_data)
    for index in (0, 9, 10, 25):
        chunk = source.chunk(source.chunk_of(index))
        assert chunk.start <= index < chunk.end


def test_paced_counting_follows_recorded_time(tiny_data: Path) -> None:
    """`count_due(s)` counts the trades whose recorded offset is at most s seconds."""
    source = replay(tiny_data)
    assert source.count_due(0.0) == 1
    assert source.count_due(3.5) == 4
    assert source.due(3) == 3.0
    assert source.count_due(source.period_us / 1e6) == 11


def test_walk_is_deterministic_for_a_seed() -> None:
    """The same seed and symbol give the same trades; another seed gives others."""
    a = WalkSource("LTCBTC", seed=7, rate=10.0, start_us=0).chunk(1)
    b = WalkSource("LTCBTC", seed=7, rate=10.0, start_us=0).chunk(1)
    c = WalkSource("LTCBTC", seed=8, rate=10.0, start_us=0).chunk(1)
    assert a.statics.price == b.statics.price
    assert a.statics.qty == b.statics.qty
    assert a.statics.price != c.statics.price


def test_walk_ids_and_times_are_consecutive() -> None:
    """Walk trades have consecutive ids from 1 and are spaced 1/rate seconds apart."""
    source = WalkSource("LTCBTC", seed=0, rate=4.0, start_us=1_000_000)
    chunk = source.chunk(0)
    assert all_ids(chunk)[:3] == [1, 2, 3]
    assert len(chunk) == WALK_CHUNK
    assert chunk.times(True).trade[:3] == [1_000_000, 1_250_000, 1_500_000]
    assert source.chunk(1).first_id == WALK_CHUNK + 1
    assert source.count_due(1.0) == 5


def test_walk_continues_its_price_across_chunks() -> None:
    """A chunk starts near where the previous one ended (one small step away)."""
    source = WalkSource("LTCBTC", seed=0, rate=1.0, start_us=0)
    end = float(source.chunk(0).statics.price[-1])
    start = float(source.chunk(1).statics.price[0])
    assert abs(start / end - 1) < 0.01
