"""The Parquet sink: partitions, exact values, once-only trades, atomic parts, crash recovery."""

from __future__ import annotations

import asyncio
import io
import re
import sys
import textwrap
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from streamer.events import GapNotice, TradeEvent
from streamer.recording.layout import JOURNAL, read_gaps, write_atomically
from streamer.sinks.base import SinkError, SinkEvent, SinkUnavailable
from streamer.sinks.parquet import ROLL_BYTES, ParquetSink
from streamer.sinks.urls import InvalidSinkUrl, sink_from_url
from tests.sinks.events import publish, publish_all

DAY_MS = 1_559_520_000_000  # 2019-06-03 00:00 UTC


def trade(
    trade_id: int,
    *,
    symbol: str = "ADAUSDT",
    time: int = DAY_MS,
    price: str = "0.09643000",
    quantity: str = "1617.50000000",
    backfilled: bool = False,
) -> TradeEvent:
    return TradeEvent(
        event_type="trade",
        event_time=time + 3,
        symbol=symbol,
        trade_id=trade_id,
        price=Decimal(price),
        quantity=Decimal(quantity),
        trade_time=time,
        buyer_market_maker=trade_id % 2 == 0,
        backfilled=backfilled,
    )


def read(root: Path) -> pa.Table:
    dataset = ds.dataset(root, format="parquet", partitioning="hive")
    return dataset.to_table().sort_by([("symbol", "ascending"), ("trade_id", "ascending")])


def files(root: Path, pattern: str = "*.parquet") -> list[str]:
    """The files under `root` matching `pattern`, relative to it, sorted."""
    return sorted(str(p.relative_to(root)) for p in root.rglob(pattern))


async def record(root: Path, *batches: Sequence[SinkEvent], roll_bytes: int = ROLL_BYTES) -> None:
    await publish_all(ParquetSink(root, roll_bytes=roll_bytes), *batches)


async def test_trades_land_in_symbol_and_day_partitions_with_exact_values(tmp_path: Path) -> None:
    """Each trade is one row under symbol=/date=, with its decimals exact and its times in ms."""
    next_day = DAY_MS + 86_400_000
    await record(
        tmp_path,
        [
            trade(1, price="0.00000001", quantity="92233720368.12345678"),
            trade(2, time=next_day),
            trade(7, symbol="BTCUSDT", price="68123.45000000"),
        ],
    )
    assert files(tmp_path) == [
        "symbol=ADAUSDT/date=2019-06-03/part-0.parquet",
        "symbol=ADAUSDT/date=2019-06-04/part-0.parquet",
        "symbol=BTCUSDT/date=2019-06-03/part-0.parquet",
    ]
    table = read(tmp_path)
    assert table.column("trade_id").to_pylist() == [1, 2, 7]
    assert table.column("price").to_pylist()[0] == Decimal("0.00000001")
    assert table.column("quantity").to_pylist()[0] == Decimal("92233720368.12345678")
    assert table.column("price").to_pylist()[2] == Decimal("68123.45")
    assert table.schema.field("trade_time").type == pa.timestamp("ms", tz="UTC")
    assert table.column("event_time").cast(pa.int64()).to_pylist()[0] == DAY_MS + 3
    assert table.column("buyer_is_maker").to_pylist() == [False, True, False]


async def test_microsecond_streams_keep_microseconds(tmp_path: Path) -> None:
    """A stream in µs is recorded in µs, so no precision is lost."""
    await record(tmp_path, [trade(1, time=DAY_MS * 1000 + 123)])
    table = read(tmp_path)
    assert table.schema.field("trade_time").type == pa.timestamp("us", tz="UTC")
    assert table.column("trade_time").cast(pa.int64()).to_pylist() == [DAY_MS * 1000 + 123]


async def test_milliseconds_into_a_microsecond_recording_become_microseconds(
    tmp_path: Path,
) -> None:
    """A ms trade joins a µs dataset exactly, its times multiplied by 1000."""
    await record(tmp_path, [trade(1, time=DAY_MS * 1000 + 5)])
    await record(tmp_path, [trade(2, time=DAY_MS + 7)])
    times = read(tmp_path).column("trade_time").cast(pa.int64()).to_pylist()
    assert times == [DAY_MS * 1000 + 5, (DAY_MS + 7) * 1000]


async def test_a_batch_sent_again_and_a_restart_record_each_trade_once(tmp_path: Path) -> None:
    """Trades already held (a resent batch, a restarted stream) are dropped by symbol and id."""
    await record(tmp_path, [trade(1), trade(2)], [trade(1), trade(2), trade(3)])
    await record(tmp_path, [trade(2), trade(3), trade(4), trade(1, symbol="BTCUSDT")])
    table = read(tmp_path)
    assert list(zip(*table.select(["symbol", "trade_id"]).to_pydict().values(), strict=True)) == [
        ("ADAUSDT", 1),
        ("ADAUSDT", 2),
        ("ADAUSDT", 3),
        ("ADAUSDT", 4),
        ("BTCUSDT", 1),
    ]


async def test_files_roll_by_size_and_a_restart_appends_new_parts(tmp_path: Path) -> None:
    """A small roll size makes several parts; a restart adds parts and leaves the old ones alone."""
    await record(tmp_path, *[[trade(i)] for i in range(1, 7)], roll_bytes=100)
    folder = tmp_path / "symbol=ADAUSDT" / "date=2019-06-03"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert len(before) >= 3
    await record(tmp_path, [trade(7), trade(8)])
    after = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert {k: after[k] for k in before} == before
    assert len(after) == len(before) + 1
    assert read(tmp_path).column("trade_id").to_pylist() == list(range(1, 9))


async def test_files_roll_by_time(tmp_path: Path) -> None:
    """Buffered trades become a part once the oldest of them is `roll_seconds` old."""
    now = [0.0]
    sink = ParquetSink(tmp_path, roll_seconds=60.0, clock=lambda: now[0])
    await sink.open()
    await publish(sink, [trade(1)])
    now[0] = 30.0
    await publish(sink, [trade(2)])
    assert not files(tmp_path)
    now[0] = 61.0
    await publish(sink, [trade(3)])
    assert read(tmp_path).column("trade_id").to_pylist() == [1, 2, 3]
    await sink.close()


async def test_gaps_go_to_the_ledger_once_with_range_and_cause(tmp_path: Path) -> None:
    """An announced gap is one ledger row with id range, size, cause and time, even if resent."""
    gap = GapNotice("ADAUSDT", 3, 9)
    await record(tmp_path, [trade(1), trade(2), gap], [gap, trade(10)])
    await record(tmp_path, [gap])
    ledger = read_gaps(tmp_path).to_pylist()
    assert len(ledger) == 1
    assert ledger[0]["symbol"] == "ADAUSDT"
    assert (ledger[0]["first_missing_id"], ledger[0]["last_missing_id"]) == (3, 9)
    assert ledger[0]["missing"] == 7
    assert ledger[0]["cause"]
    assert ledger[0]["recorded_at"] is not None
    assert read(tmp_path).column("trade_id").to_pylist() == [1, 2, 10]


async def test_a_second_recorder_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    """Two processes appending to one dataset would corrupt it, so the second one is refused."""
    first = ParquetSink(tmp_path)
    await first.open()
    try:
        with pytest.raises(SinkError, match="another process"):
            await ParquetSink(tmp_path).open()
    finally:
        await first.close()


async def test_a_value_decimal_38_18_cannot_hold_is_refused_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    """A price finer than 18 decimals is refused with the trade named, not rounded."""
    sink = ParquetSink(tmp_path)
    await sink.open()
    with pytest.raises(SinkError, match="trade 2 has"):
        await publish(sink, [trade(1), trade(2, price="0.0000000000000000001")])
    await publish(sink, [trade(1)])
    await sink.close()
    assert read(tmp_path).column("trade_id").to_pylist() == [1]


async def test_microseconds_into_a_millisecond_recording_are_refused(tmp_path: Path) -> None:
    """One dataset has one time unit: a µs stream cannot silently lose precision in a ms one."""
    await record(tmp_path, [trade(1)])
    sink = ParquetSink(tmp_path)
    await sink.open()
    try:
        with pytest.raises(SinkError, match="µs"):
            await publish(sink, [trade(2, time=DAY_MS * 1000)])
    finally:
        await sink.close()


CRASHING_RECORDER = textwrap.dedent(
    """
    import asyncio, os, sys
    from pathlib import Path
    from tests.sinks.test_parquet import trade
    from tests.sinks.events import publish
    from streamer.sinks.parquet import ParquetSink

    async def main() -> None:
        sink = ParquetSink(Path(sys.argv[1]))
        await sink.open()
        await publish(sink, [trade(1), trade(2)])
        await publish(sink, [trade(3)])
        os._exit(0)  # dies like kill -9: no close, no roll

    asyncio.run(main())
    """
)


async def crash_after_publishing(root: Path) -> None:
    """Trades 1-3 published into `root` by a process that then dies without closing."""
    crashing = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CRASHING_RECORDER, str(root)
    )
    assert await crashing.wait() == 0


async def test_acknowledged_trades_survive_a_crash_and_a_torn_batch_is_dropped(
    tmp_path: Path,
) -> None:
    """After a crash, the next open rolls every acknowledged trade into parts, not half a batch."""
    await crash_after_publishing(tmp_path)
    assert not files(tmp_path)
    with (tmp_path / JOURNAL).open("ab") as journal:
        journal.write(b'["ADAUSDT",4,"0.1"')
    sink = ParquetSink(tmp_path)
    await sink.open()
    assert sink.last_ids == {"ADAUSDT": 3}
    assert read(tmp_path).column("trade_id").to_pylist() == [1, 2, 3]
    await publish(sink, [trade(3), trade(4)])
    await sink.close()
    assert read(tmp_path).column("trade_id").to_pylist() == [1, 2, 3, 4]
    assert not files(tmp_path, ".*")


async def test_readers_never_see_a_half_written_part(tmp_path: Path) -> None:
    """A temporary file left by a crash mid-write has a hidden name that readers skip."""
    await record(tmp_path, [trade(1)])
    folder = tmp_path / "symbol=ADAUSDT" / "date=2019-06-03"
    (folder / ".part-1.parquet.tmp").write_bytes(b"PAR1 half a file")
    assert read(tmp_path).column("trade_id").to_pylist() == [1]
    await record(tmp_path, [trade(2)])
    assert pq.read_table(folder / "part-1.parquet").column("trade_id").to_pylist() == [2]


def readme_query() -> str:
    """The DuckDB example of the README, as a user would paste it."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    match = re.search(r"```python\n(import duckdb\n.*?)```", readme, re.DOTALL)
    assert match, "the README shows no DuckDB query"
    return match.group(1)


async def test_the_readme_query_reads_the_recording_with_duckdb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's three lines give trades per minute and VWAP straight from the files."""
    await record(
        tmp_path / "recording",
        [
            trade(1, symbol="ETHUSDT", time=DAY_MS, price="3000", quantity="1"),
            trade(2, symbol="ETHUSDT", time=DAY_MS + 30_000, price="3010", quantity="3"),
            trade(3, symbol="ETHUSDT", time=DAY_MS + 60_000, price="2990.5", quantity="0.5"),
            trade(1, symbol="BTCUSDT", time=DAY_MS, price="9", quantity="9"),
            GapNotice("ETHUSDT", 4, 9),
        ],
    )
    monkeypatch.chdir(tmp_path)
    shown = io.StringIO()
    monkeypatch.setattr(sys, "stdout", shown)
    exec(readme_query(), {})
    rows = [line for line in shown.getvalue().splitlines() if "2019-06-03" in line]
    assert len(rows) == 2
    assert "│      2 │" in rows[0]
    assert "3007.5" in rows[0]
    assert "│      1 │" in rows[1]
    assert "2990.5" in rows[1]


def test_a_parquet_url_names_the_folder_and_the_roll_limits(tmp_path: Path) -> None:
    """`--sink parquet:///dir?roll_mb=..&roll_seconds=..` gives a sink on that folder."""
    sink, _ = sink_from_url(f"parquet://{tmp_path}/my%20rec?roll_mb=0.5&roll_seconds=10&batch=9")
    assert isinstance(sink, ParquetSink)
    assert sink.root == tmp_path / "my rec"
    assert (sink.roll_bytes, sink.roll_seconds) == (512 * 1024, 10.0)
    assert sink.name == f"parquet://{tmp_path}/my rec"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("parquet://", "names no folder"),
        ("parquet:///tmp/x?roll_mb=0", "must be positive"),
        ("parquet:///tmp/x?compression=gzip", "unknown parameter compression"),
    ],
)
def test_a_bad_parquet_url_is_one_clear_error(url: str, message: str) -> None:
    """A URL without a folder, a zero roll limit or an unknown parameter is refused at start."""
    with pytest.raises(InvalidSinkUrl, match=message):
        sink_from_url(url)


async def test_a_cancelled_publish_sent_again_is_recorded_once(tmp_path: Path) -> None:
    """A publish cancelled mid-write finishes in its thread; the resent batch waits, then drops
    the trades it finds already held."""
    batch = [trade(i) for i in range(1, 20_001)]
    sink = ParquetSink(tmp_path)
    await sink.open()
    first = asyncio.create_task(publish(sink, batch))
    await asyncio.sleep(0.01)
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    await publish(sink, batch)
    await sink.close()
    assert read(tmp_path).column("trade_id").to_pylist() == list(range(1, 20_001))


async def test_a_roll_that_fails_halfway_writes_the_rest_once_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk mid-roll: the batch is sent again, and only the unwritten parts follow."""
    calls = []

    def full_disk_once(table: pa.Table, path: Path) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        write_atomically(table, path)

    monkeypatch.setattr("streamer.sinks.parquet.write_atomically", full_disk_once)
    batch: list[SinkEvent] = [trade(1), trade(2, symbol="BTCUSDT"), trade(3, symbol="ETHUSDT")]
    sink = ParquetSink(tmp_path, roll_bytes=1)
    await sink.open()
    with pytest.raises(SinkUnavailable, match="No space left"):
        await publish(sink, batch)
    await publish(sink, batch)
    await sink.close()
    table = read(tmp_path)
    assert sorted(zip(*table.select(["symbol", "trade_id"]).to_pydict().values(), strict=True)) == [
        ("ADAUSDT", 1),
        ("BTCUSDT", 2),
        ("ETHUSDT", 3),
    ]


async def test_a_damaged_part_is_a_clear_error_and_leaves_the_folder_unlocked(
    tmp_path: Path,
) -> None:
    """A part that is not Parquet stops the open with a message; once removed, it opens."""
    await record(tmp_path, [trade(1)])
    damaged = tmp_path / "symbol=ADAUSDT" / "date=2019-06-03" / "part-1.parquet"
    damaged.write_bytes(b"not parquet at all")
    with pytest.raises(SinkError, match="damaged"):
        await ParquetSink(tmp_path).open()
    damaged.unlink()
    await record(tmp_path, [trade(1), trade(2)])
    assert read(tmp_path).column("trade_id").to_pylist() == [1, 2]
