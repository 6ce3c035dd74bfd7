"""`streamer verify`: prove a recording complete, or name exactly what is wrong with it.

The core (`check_symbol`) is pure: it takes each day's trade ids in the order they are stored
and the ranges the gap ledger explains, and finds the holes, duplicates and out-of-order rows.
The readers around it turn a Parquet recording, or a folder of CSV trade files, into that input.
A hole is placed in the day of the first trade after it; one that the ledger covers only in part
is reported for the part it does not cover.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from streamer.errors import StreamerError
from streamer.mock_exchange.data import DataError, read_columns
from streamer.recording.layout import JOURNAL, is_recording, parts, read_gaps, symbol_days
from streamer.sinks.parquet import read_journal

SHOWN_IDS = 5
DAY_US = 86_400_000_000


class RecordingError(StreamerError, ValueError):
    """A folder that holds neither a recording nor trade files, or a file that cannot be read."""


@dataclass(frozen=True, order=True)
class IdRange:
    """Trade ids `first..last`, both included."""

    first: int
    last: int

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    def __str__(self) -> str:
        return f"{self.first}..{self.last}"


@dataclass(frozen=True)
class DayIds:
    """One symbol's trade ids of one UTC day, in the order they are stored."""

    day: str
    ids: Sequence[int]


@dataclass(frozen=True)
class DayReport:
    """What `verify` found in one symbol's day."""

    symbol: str
    day: str
    count: int
    first_id: int | None
    last_id: int | None
    holes: tuple[IdRange, ...] = ()
    explained: tuple[IdRange, ...] = ()
    duplicates: tuple[int, ...] = ()
    duplicate_rows: int = 0
    out_of_order: int = 0
    first_out_of_order: int | None = None

    @property
    def clean(self) -> bool:
        return not (self.holes or self.duplicate_rows or self.out_of_order)

    def lines(self) -> Iterator[str]:
        """One line for the day, then one per problem."""
        where = f"{self.symbol} {self.day}"
        span = f"ids {self.first_id}..{self.last_id}" if self.count else "no trades"
        explained = sum(r.size for r in self.explained)
        note = f", {explained} in the gap ledger" if explained else ""
        yield f"{where}: {span}, {counted(self.count, 'trade')}{note}"
        for hole in self.holes:
            yield f"{where}: hole {hole} ({counted(hole.size, 'trade')}) not in the gap ledger"
        if self.duplicate_rows:
            shown = ", ".join(map(str, self.duplicates[:SHOWN_IDS]))
            more = ", ..." if len(self.duplicates) > SHOWN_IDS else ""
            yield f"{where}: {self.duplicate_rows} duplicate rows (ids {shown}{more})"
        if self.out_of_order:
            yield (
                f"{where}: {self.out_of_order} rows out of id order "
                f"(first: id {self.first_out_of_order})"
            )


@dataclass
class Summary:
    """Totals over every symbol and day."""

    reports: list[DayReport] = field(default_factory=list)
    journalled: int = 0
    """Acknowledged trades still in the recorder's journal, not yet in parts (not checked)."""

    @property
    def unexplained(self) -> list[IdRange]:
        return [hole for report in self.reports for hole in report.holes]

    @property
    def clean(self) -> bool:
        return all(report.clean for report in self.reports)

    def line(self) -> str:
        symbols = len({r.symbol for r in self.reports})
        holes = self.unexplained
        explained = [g for r in self.reports for g in r.explained]
        return (
            f"{counted(symbols, 'symbol')}, {counted(len(self.reports), 'day')}, "
            f"{counted(sum(r.count for r in self.reports), 'trade')}; "
            f"{counted(len(holes), 'hole')} not in the ledger "
            f"({counted(sum(h.size for h in holes), 'trade')}), "
            f"{len(explained)} in the ledger ({counted(sum(g.size for g in explained), 'trade')}), "
            f"{counted(sum(r.duplicate_rows for r in self.reports), 'duplicate row')}, "
            f"{counted(sum(r.out_of_order for r in self.reports), 'row')} out of order: "
            + ("clean" if self.clean else "NOT CLEAN")
        )


def check_symbol(symbol: str, days: Sequence[DayIds], ledger: Iterable[IdRange]) -> list[DayReport]:
    """Check one symbol's days (in date order) against the ranges its gap ledger explains."""
    covered = merge(ledger)
    unique = sorted({i for day in days for i in day.ids})
    holes = [IdRange(a + 1, b - 1) for a, b in pairwise(unique) if b - a > 1]
    day_of = {i: day.day for day in days for i in day.ids}
    counts = Counter(i for day in days for i in day.ids)
    reports = []
    for day in days:
        mine = [h for h in holes if day_of[h.last + 1] == day.day]
        unexplained = [rest for h in mine for rest in subtract(h, covered)]
        out_of_order = [b for a, b in pairwise(day.ids) if b < a]
        duplicates = sorted({i for i in day.ids if counts[i] > 1})
        reports.append(
            DayReport(
                symbol=symbol,
                day=day.day,
                count=len(day.ids),
                first_id=min(day.ids, default=None),
                last_id=max(day.ids, default=None),
                holes=tuple(unexplained),
                explained=tuple(
                    IdRange(max(h.first, c.first), min(h.last, c.last))
                    for h in mine
                    for c in covered
                    if c.first <= h.last and h.first <= c.last
                ),
                duplicates=tuple(duplicates),
                duplicate_rows=sum(counts[i] - 1 for i in duplicates),
                out_of_order=len(out_of_order),
                first_out_of_order=out_of_order[0] if out_of_order else None,
            )
        )
    return reports


def merge(ranges: Iterable[IdRange]) -> list[IdRange]:
    """Overlapping or touching ranges joined, in id order."""
    merged: list[IdRange] = []
    for item in sorted(ranges):
        if merged and item.first <= merged[-1].last + 1:
            merged[-1] = IdRange(merged[-1].first, max(merged[-1].last, item.last))
        else:
            merged.append(item)
    return merged


def subtract(hole: IdRange, covered: Sequence[IdRange]) -> Iterator[IdRange]:
    """The parts of `hole` that no range of `covered` (merged, in order) explains."""
    start = hole.first
    for item in covered:
        if item.last < start or item.first > hole.last:
            continue
        if item.first > start:
            yield IdRange(start, item.first - 1)
        start = item.last + 1
        if start > hole.last:
            return
    if start <= hole.last:
        yield IdRange(start, hole.last)


def counted(count: int, noun: str) -> str:
    """`1 trade`, `2 trades`."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


# --- readers -------------------------------------------------------------------------------


def verify(folder: Path) -> Summary:
    """Check a recording made by `streamer record`, or a folder of CSV trade files."""
    if is_recording(folder):
        summary = _summary(_recording_days(folder), _ledger(folder))
        journal = folder / JOURNAL
        if journal.exists():
            summary.journalled = sum(batch.num_rows for batch in read_journal(journal))
        return summary
    return _summary(_csv_days(folder), {})


def _summary(days: dict[str, list[DayIds]], ledger: dict[str, list[IdRange]]) -> Summary:
    summary = Summary()
    for symbol in sorted(days):
        summary.reports.extend(check_symbol(symbol, days[symbol], ledger.get(symbol, ())))
    return summary


def _recording_days(root: Path) -> dict[str, list[DayIds]]:
    days: dict[str, list[DayIds]] = {}
    for symbol, day, folder in symbol_days(root):
        ids: list[int] = []
        for path in parts(folder):
            try:
                column = pq.read_table(path, columns=["trade_id"]).column("trade_id")
            except (OSError, pa.ArrowException) as error:
                raise RecordingError(f"{path}: not a readable part ({error})") from None
            ids.extend(column.to_pylist())
        days.setdefault(symbol, []).append(DayIds(day, ids))
    return days


def _ledger(root: Path) -> dict[str, list[IdRange]]:
    ledger: dict[str, list[IdRange]] = {}
    gaps = read_gaps(root).to_pydict()
    for symbol, first, last in zip(
        gaps["symbol"], gaps["first_missing_id"], gaps["last_missing_id"], strict=True
    ):
        ledger.setdefault(symbol, []).append(IdRange(first, last))
    return ledger


def _csv_days(folder: Path) -> dict[str, list[DayIds]]:
    """CSV trade files (the recorder's or Binance's), by symbol, split into UTC days."""
    source = folder / "trades" if (folder / "trades").is_dir() else folder
    files = (
        sorted(
            p
            for p in source.iterdir()
            if p.is_file() and p.name.endswith((".csv.gz", ".csv", ".zip"))
        )
        if source.is_dir()
        else []
    )
    if not files:
        raise RecordingError(f"{folder} holds neither a recording nor CSV trade files")
    by_day: dict[str, dict[int, list[int]]] = {}
    for path in files:
        symbol = path.name.split("-", 1)[0].upper()
        try:
            columns = read_columns(path)
        except DataError as error:
            raise RecordingError(str(error)) from None
        days = by_day.setdefault(symbol, {})
        for trade_id, time_us in zip(columns.ids, columns.trade_time_us, strict=True):
            days.setdefault(time_us // DAY_US, []).append(trade_id)
    return {
        symbol: [DayIds(_date(day), ids) for day, ids in sorted(days.items())]
        for symbol, days in by_day.items()
    }


def _date(day_number: int) -> str:
    return datetime.fromtimestamp(day_number * DAY_US // 1_000_000, UTC).date().isoformat()
