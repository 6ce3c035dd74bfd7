"""`streamer record` under exchange faults and `kill -9`: the recording verifies clean, every
trade between its first and last id exactly once (or in its gap ledger)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pyarrow.dataset as ds

from streamer.mock_exchange import MockConfig, MockExchange
from streamer.recording.layout import JOURNAL, read_gaps
from streamer.recording.verify import verify
from tests.binance.recorded import require_data
from tests.e2e.inprocess import eventually
from tests.e2e.processes import Spawned

SYMBOLS = ("ADAUSDT", "FETUSDT")


def journalled(folder: Path) -> int:
    """Bytes of trades the recorder has acknowledged since it last rolled its journal."""
    journal = folder / JOURNAL
    return journal.stat().st_size if journal.exists() else 0


async def exited(process: Spawned, signum: signal.Signals) -> int:
    """Signal `process` and wait for its exit code while this loop keeps the mock serving."""
    process.popen.send_signal(signum)
    return await eventually(process.returncode, f"{process.name} to exit after {signum.name}")


async def test_a_recording_under_faults_and_kill_9_verifies_clean(tmp_path: Path) -> None:
    """Drops, withheld and repeated ids, a kill -9 and a restart: each trade once, or announced.

    The exchange trades on at 2000 times its pace while nothing records, so the restart may find
    more missing than one back-fill replays: that part must be in the gap ledger.
    """
    folder = tmp_path / "recording"
    config = MockConfig(port=0, speed=2000.0, data_dir=require_data().parent)
    async with MockExchange(config) as mock:
        args = ["record", str(folder), *SYMBOLS, "--ws-url", mock.ws_url]
        args += ["--rest-url", mock.rest_url]

        first = Spawned("record", args, tmp_path / "record-1.log")
        try:
            await eventually(lambda: journalled(folder) > 0, "trades recorded")
            for symbol in SYMBOLS:
                mock.faults.skip_ids(symbol, 25)
                mock.faults.duplicate_ids(symbol, 10)
            mock.faults.drop()
            seen = journalled(folder)
            await eventually(lambda: journalled(folder) > seen + 5000, "trades after the faults")
            assert await exited(first, signal.SIGKILL) == -signal.SIGKILL
        finally:
            first.close()
        await asyncio.sleep(0.5)  # the exchange trades on while nothing records

        second = Spawned("record", args, tmp_path / "record-2.log")
        try:
            await eventually(lambda: "back-filled" in second.output(), "the back-fill")
            await eventually(lambda: journalled(folder) > 0, "trades recorded again")
            mock.faults.drop()
            seen = journalled(folder)
            await eventually(lambda: journalled(folder) > seen + 2000, "trades after the drop")
            assert await exited(second, signal.SIGINT) == 0, second.output()
        finally:
            second.close()

    summary = verify(folder)
    assert summary.clean, "\n".join(line for r in summary.reports for line in r.lines())
    table = ds.dataset(folder, format="parquet", partitioning="hive").to_table()
    ledger = read_gaps(folder).to_pylist()
    for symbol in SYMBOLS:
        ids = table.filter(ds.field("symbol") == symbol).column("trade_id").to_pylist()
        assert len(ids) == len(set(ids))
        announced = {
            i
            for gap in ledger
            if gap["symbol"] == symbol
            for i in range(gap["first_missing_id"], gap["last_missing_id"] + 1)
        }
        assert not announced & set(ids)
        assert set(ids) | announced == set(range(min(ids), max(ids) + 1))
    assert any(table.column("backfilled").to_pylist())
