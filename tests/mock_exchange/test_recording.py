"""A recording made by `streamer record` drives the mock exchange like a CSV file does."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamer.events import GapNotice
from streamer.mock_exchange import MockConfig
from streamer.mock_exchange.data import DataError
from streamer.mock_exchange.exchange import Exchange
from streamer.mock_exchange.recording import load_recording, scan_recording
from streamer.sinks.parquet import ParquetSink
from tests.sinks.events import publish
from tests.sinks.test_parquet import DAY_MS, trade


async def _record(root: Path) -> None:
    sink = ParquetSink(root, roll_bytes=500)
    await sink.open()
    await publish(sink, [trade(i, time=DAY_MS + 10 * i, price=f"0.{i:08d}") for i in range(1, 6)])
    await publish(sink, [GapNotice("ADAUSDT", 6, 7)])
    await publish(sink, [trade(i, time=DAY_MS + 10 * i, price="1.5") for i in range(8, 12)])
    await publish(sink, [trade(4, symbol="ETHUSDT", quantity="0.0000000000001")])
    await sink.close()


async def test_the_mock_serves_a_recording_with_its_ids_values_and_times(tmp_path: Path) -> None:
    """History and stream of a recorded symbol carry the recorded trades, in exchange format."""
    await _record(tmp_path)
    exchange = Exchange(MockConfig(data_dir=tmp_path, speed=None))
    assert set(exchange.files) == {"ADAUSDT", "ETHUSDT"}
    market = exchange.market("ADAUSDT")
    assert market is not None
    market.publish(11)
    rows = market.history(0, 11, micro=False)
    assert [r["id"] for r in rows] == list(range(1, 12))
    assert rows[0]["price"] == "0.00000001"
    assert rows[0]["qty"] == "1617.50000000"
    assert rows[0]["time"] == DAY_MS + 10
    assert [r["isBuyerMaker"] for r in rows[:5]] == [i % 2 == 0 for i in range(1, 6)]
    assert rows[8]["price"] == "1.50000000"
    filled = [r["time"] for r in rows[5:7]]
    assert DAY_MS + 50 <= filled[0] <= filled[1] <= DAY_MS + 80


async def test_values_finer_than_the_exchange_sends_are_played_exactly(tmp_path: Path) -> None:
    """A value with more than 8 decimals keeps every digit instead of being rounded."""
    await _record(tmp_path)
    tape = load_recording("ETHUSDT", scan_recording(tmp_path)["ETHUSDT"])
    assert tape.qty == [b"0.0000000000001"]
    assert tape.first_id == 4


def test_a_folder_without_a_recording_has_no_recorded_symbols(tmp_path: Path) -> None:
    """CSV folders and empty ones are left to the CSV reader."""
    assert scan_recording(tmp_path) == {}
    assert scan_recording(None) == {}


def test_a_damaged_part_is_a_clear_data_error(tmp_path: Path) -> None:
    """A part that is not Parquet names the symbol instead of failing somewhere deep."""
    folder = tmp_path / "symbol=ADAUSDT" / "date=2019-06-03"
    folder.mkdir(parents=True)
    (folder / "part-0.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match="ADAUSDT: cannot read the recording"):
        load_recording("ADAUSDT", scan_recording(tmp_path)["ADAUSDT"])


async def test_a_recording_plays_at_its_recorded_pace_scaled_by_the_speed(tmp_path: Path) -> None:
    """At speed 0.1, a quarter second of the mock's clock plays 25 ms of recorded trades."""
    await _record(tmp_path)
    now = [100.0]
    exchange = Exchange(MockConfig(data_dir=tmp_path, speed=0.1), clock=lambda: now[0])
    market = exchange.market("ADAUSDT")
    assert market is not None
    now[0] += 0.25
    assert market.head() == 3  # trades 10, 20 and 30 ms into the recording
    now[0] += 0.5
    assert market.head() == 8
