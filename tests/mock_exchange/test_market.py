"""One symbol's market: what has happened by now, and the stream faults on top of it."""

from __future__ import annotations

import json
from pathlib import Path

from streamer.mock_exchange.data import load_tape, scan_trade_files
from streamer.mock_exchange.encoding import Encoded, LruCache, Template
from streamer.mock_exchange.market import Market
from streamer.mock_exchange.sources import ReplaySource
from tests.mock_exchange.test_encoding import split_frames


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def market(tiny_data: Path, speed: float | None, clock: Clock) -> Market:
    source = ReplaySource(load_tape("BNBBTC", scan_trade_files(tiny_data)["BNBBTC"]))
    cache: LruCache[Encoded] = LruCache(10**6)
    templates: LruCache[Template] = LruCache(10**6)
    return Market(
        source, speed=speed, started=clock.now, clock=clock, cache=cache, templates=templates
    )


def ids(data: bytes) -> list[int]:
    return [json.loads(p)["t"] for p in split_frames(data)]


def test_paced_market_follows_the_clock(tiny_data: Path) -> None:
    """At speed 2, the trades recorded in the first 3 s have happened 1.5 s after the start."""
    clock = Clock()
    paced = market(tiny_data, 2.0, clock)
    assert paced.head() == 1
    clock.now += 1.5
    assert paced.head() == 4
    assert paced.due_at(4) == 102.0


def test_unpaced_market_happens_as_far_as_read(tiny_data: Path) -> None:
    """Without a speed, trades happen when a reader publishes them, never going back."""
    unpaced = market(tiny_data, None, Clock())
    assert unpaced.head() == 0
    unpaced.publish(7)
    unpaced.publish(3)
    assert unpaced.head() == 7


def test_frames_stop_at_the_end_of_a_chunk(tiny_data: Path) -> None:
    """One call returns frames up to the requested end or the chunk's end, whichever is first."""
    unpaced = market(tiny_data, None, Clock())
    data, stop = unpaced.frames(8, 15, None, micro=False)
    assert stop == 10
    assert ids(data) == [108, 109]


def test_history_serves_only_trades_that_happened(tiny_data: Path) -> None:
    """The history from an index holds the published trades, across loops, oldest first."""
    unpaced = market(tiny_data, None, Clock())
    unpaced.publish(13)
    rows = unpaced.history(8, 100, micro=False)
    assert [r["id"] for r in rows] == [108, 109, 110, 111, 112]


def test_skipped_ids_leave_the_stream_but_not_the_history(tiny_data: Path) -> None:
    """After skip(2) the stream jumps over the next two ids and the history still has them."""
    unpaced = market(tiny_data, None, Clock())
    unpaced.publish(2)
    assert list(unpaced.skip(2)) == [2, 3]
    data, stop = unpaced.frames(2, 6, "bnbbtc@trade", micro=False)
    assert [json.loads(p)["data"]["t"] for p in split_frames(data)] == [104, 105]
    unpaced.publish(stop)
    assert [r["id"] for r in unpaced.history(0, 10, micro=False)] == list(range(100, 106))


def test_duplicated_ids_are_sent_twice(tiny_data: Path) -> None:
    """After duplicate(1) the next trade appears twice on the stream."""
    unpaced = market(tiny_data, None, Clock())
    unpaced.duplicate(1)
    data, _ = unpaced.frames(0, 3, None, micro=False)
    assert ids(data) == [100, 100, 101, 102]


def test_ids_and_indices_convert(tiny_data: Path) -> None:
    """Trade ids are the first recorded id plus the index."""
    unpaced = market(tiny_data, None, Clock())
    assert unpaced.id_of(5) == 105
    assert unpaced.index_of(105) == 5
