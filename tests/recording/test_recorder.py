"""The recorder: exactly the asked symbols, resumed after the last recorded trade; and a
recording replayed through the mock and recorded again is the same recording, row for row."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from streamer.config import Settings
from streamer.db import SettingsRepository, Status, create_engine
from streamer.journal import Journal
from streamer.mock_exchange import MockConfig, MockExchange
from streamer.recording.recorder import (
    prepare_database,
    recorded_positions,
    recorder_settings,
)
from streamer.recording.verify import IdRange, verify
from streamer.service import Service
from streamer.sinks.parquet import ParquetSink
from streamer.sinks.runner import RunnerOptions, SinkRunner
from streamer.wire import encode_events
from tests.binance.recorded import require_data
from tests.e2e.inprocess import eventually
from tests.fixtures.mock_exchange import fast_streamer_config
from tests.sinks.test_parquet import DAY_MS, record, trade

SYMBOL = "ADAUSDT"


@contextlib.asynccontextmanager
async def recording(folder: Path, mock: MockExchange, *symbols: str) -> AsyncIterator[Service]:
    """`streamer record folder symbols` in this process, stopped (and flushed) at the end."""
    settings = recorder_settings(folder, Settings(ws_url=mock.ws_url, rest_url=mock.rest_url))
    await prepare_database(
        settings.resolved_database_url(), symbols, await recorded_positions(folder)
    )
    service = Service(settings, streamer_config=fast_streamer_config(mock), http=False)
    task = asyncio.create_task(service.run())
    try:
        yield service
    finally:
        await eventually(lambda: service.root.state.value == "running", "the recorder up")
        await service.root.stop()
        assert await task == 0


def durable(service: Service, symbol: str) -> int | None:
    """The last trade id the recording has made durable for `symbol`."""
    sink = service.sinks.runners[0].sink
    assert isinstance(sink, ParquetSink)
    return sink.last_ids.get(symbol)


def rows(folder: Path) -> pa.Table:
    table = ds.dataset(folder, format="parquet", partitioning="hive").to_table()
    return table.sort_by("trade_id")


async def test_a_replayed_recording_recorded_again_is_identical_row_for_row(
    tmp_path: Path,
) -> None:
    """Record from the CSV data, replay that recording through the mock, record it again."""
    data = require_data().parent
    first, second = tmp_path / "first", tmp_path / "second"
    paced = MockConfig(port=0, speed=5000.0, data_dir=data)
    async with MockExchange(paced) as mock, recording(first, mock, SYMBOL) as service:
        start = await eventually(lambda: durable(service, SYMBOL), "a first trade")
        await eventually(lambda: (durable(service, SYMBOL) or 0) > start + 2000, "trades")
    original = rows(first)
    assert original.num_rows > 2000
    assert verify(first).clean
    last = original.column("trade_id")[-1].as_py()
    replay = MockConfig(port=0, speed=None, data_dir=first)
    async with MockExchange(replay) as mock, recording(second, mock, SYMBOL) as service:
        await eventually(lambda: (durable(service, SYMBOL) or 0) >= last, "the replay")
    replayed = rows(second)
    replayed = replayed.filter(pa.compute.less_equal(replayed.column("trade_id"), last))
    assert replayed.column_names == original.column_names
    assert replayed.num_rows == original.num_rows
    assert replayed.equals(original)


async def positions_of(database_url: str) -> tuple[dict[str, int], list[str]]:
    engine = create_engine(database_url)
    try:
        repository = SettingsRepository(engine)
        on = [s.symbol for s in await repository.list(status=Status.ON)]
        return await repository.positions(), on
    finally:
        await engine.dispose()


async def test_the_recorder_streams_exactly_its_symbols_from_the_last_recorded_trade(
    tmp_path: Path,
) -> None:
    """A second run switches off symbols it was not given and resumes the others after their
    last recorded trade (the journal of a crash included)."""
    await record(tmp_path, [trade(7), trade(9, symbol="ETHUSDT", time=DAY_MS)])
    positions: Mapping[str, int] = await recorded_positions(tmp_path)
    assert positions == {"ADAUSDT": 7, "ETHUSDT": 9}
    url = recorder_settings(tmp_path, Settings()).resolved_database_url()
    await prepare_database(url, ["ADAUSDT", "BTCUSDT"], positions)
    assert await positions_of(url) == ({"ADAUSDT": 7}, ["ADAUSDT", "BTCUSDT"])
    await prepare_database(url, ["ETHUSDT"], positions)
    assert await positions_of(url) == ({"ETHUSDT": 9}, ["ETHUSDT"])


async def test_trades_the_recording_refused_are_explained_by_the_ledger(tmp_path: Path) -> None:
    """A trade the recording refuses for good arrives as the runner's gap notice, exact to
    the id, and the recording verifies clean."""
    journal = Journal.open(tmp_path / "journal")
    runner = SinkRunner(ParquetSink(tmp_path / "rec"), RunnerOptions(batch=1))
    runner.attach(journal.cursor("recording"))
    await record(tmp_path / "rec", [trade(i) for i in range(1, 6)])
    running = asyncio.create_task(runner.run(lambda: None))
    for event in (trade(6, time=DAY_MS * 1000), trade(7)):
        journal.append([event], encode_events([event]))
    await eventually(lambda: runner.published == 1, "trade 7 recorded")
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    journal.close()
    assert rows(tmp_path / "rec").column("trade_id").to_pylist() == [1, 2, 3, 4, 5, 7]
    summary = verify(tmp_path / "rec")
    assert summary.clean
    assert summary.reports[0].explained == (IdRange(6, 6),)
