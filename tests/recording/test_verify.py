"""`verify`: holes the ledger does not explain, duplicates and reorderings, in ours and in CSVs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq

from streamer.events import GapNotice
from streamer.recording.verify import DayIds, IdRange, check_symbol, verify
from streamer.sinks.parquet import ParquetSink
from tests.binance.recorded import require_data
from tests.sinks.events import publish
from tests.sinks.test_parquet import DAY_MS, trade

DAY = 86_400_000


def test_a_clean_day_has_its_range_and_count_and_no_problem() -> None:
    """Consecutive ids in order make one clean report with the id range and the count."""
    [report] = check_symbol("ADAUSDT", [DayIds("2019-06-03", [5, 6, 7, 8])], [])
    assert (report.first_id, report.last_id, report.count) == (5, 8, 4)
    assert report.clean
    assert list(report.lines()) == ["ADAUSDT 2019-06-03: ids 5..8, 4 trades"]


def test_holes_are_explained_by_the_ledger_in_whole_or_in_part() -> None:
    """A hole the ledger covers is no problem; the part it does not cover is reported."""
    days = [DayIds("d", [1, 2, 6, 7, 20])]
    [report] = check_symbol("X", days, [IdRange(3, 5), IdRange(8, 10), IdRange(15, 16)])
    assert report.holes == (IdRange(11, 14), IdRange(17, 19))
    assert sum(r.size for r in report.explained) == 3 + 3 + 2
    assert "X d: hole 11..14 (4 trades) not in the gap ledger" in list(report.lines())


def test_a_hole_across_midnight_belongs_to_the_day_after_it() -> None:
    """A hole between the last trade of one day and the first of the next is the next day's."""
    reports = check_symbol("X", [DayIds("d1", [1, 2]), DayIds("d2", [5, 6])], [])
    assert [r.holes for r in reports] == [(), (IdRange(3, 4),)]


def test_duplicates_and_reorderings_are_counted_and_named() -> None:
    """A row stored twice and rows stored out of id order are each reported with their ids."""
    [report] = check_symbol("X", [DayIds("d", [1, 2, 2, 4, 3, 5, 5, 5])], [])
    assert report.holes == ()
    assert report.duplicates == (2, 5)
    assert report.duplicate_rows == 3
    assert (report.out_of_order, report.first_out_of_order) == (1, 3)
    assert not report.clean


async def _clean_recording(root: Path) -> None:
    sink = ParquetSink(root, roll_bytes=2000)
    await sink.open()
    await publish(sink, [trade(i, time=DAY_MS + i) for i in range(1, 40)])
    await publish(sink, [GapNotice("ADAUSDT", 40, 44)])
    await publish(sink, [trade(i, time=DAY_MS + i) for i in range(45, 80)])
    await publish(sink, [trade(i, time=DAY_MS + DAY + i) for i in range(80, 90)])
    await sink.close()


def _edit_first_part(root: Path, edit: str) -> None:
    """Remove, repeat or swap rows of a recording's first part, as a damaged copy would have."""
    path = root / "symbol=ADAUSDT" / "date=2019-06-03" / "part-0.parquet"
    table = pq.read_table(path)
    order = list(range(table.num_rows))
    if edit == "hole":
        del order[10]
    elif edit == "duplicate":
        order.insert(5, 5)
    else:
        order[3], order[4] = order[4], order[3]
    pq.write_table(table.take(order), path)


async def test_our_recording_is_clean_and_each_hand_made_fault_is_found(tmp_path: Path) -> None:
    """A recording verifies clean; copies with a hole, a duplicate or a reordering do not."""
    original = tmp_path / "original"
    await _clean_recording(original)
    summary = verify(original)
    assert summary.clean
    assert [(r.day, r.count) for r in summary.reports] == [("2019-06-03", 74), ("2019-06-04", 10)]
    assert [g for r in summary.reports for g in r.explained] == [IdRange(40, 44)]
    found = {}
    for edit in ("hole", "duplicate", "reorder"):
        copy = tmp_path / edit
        shutil.copytree(original, copy)
        _edit_first_part(copy, edit)
        found[edit] = verify(copy)
    assert found["hole"].unexplained == [IdRange(11, 11)]
    assert found["duplicate"].reports[0].duplicates == (6,)
    assert found["duplicate"].unexplained == []
    assert found["reorder"].reports[0].out_of_order == 1
    assert not any(s.clean for s in found.values())


def test_the_csv_recordings_known_holes_are_found(tmp_path: Path) -> None:
    """ADAUSDT 2019-06-03 misses 125 trades in 7 holes, as the shared data says."""
    shutil.copy(require_data() / "ADAUSDT-2019-06-03.csv.gz", tmp_path)
    summary = verify(tmp_path)
    [report] = summary.reports
    assert (report.symbol, report.day, report.count) == ("ADAUSDT", "2019-06-03", 57_018)
    assert len(report.holes) == 7
    assert sum(h.size for h in report.holes) == 125
    assert report.last_id is not None
    assert report.first_id is not None
    assert report.last_id - report.first_id + 1 == 57_018 + 125
