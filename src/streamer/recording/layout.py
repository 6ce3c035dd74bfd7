"""The layout of a recording, shared by the sink that writes it and the tools that read it.

    DIR/symbol=<SYMBOL>/date=<YYYY-MM-DD>/part-<n>.parquet   trades, in id order within a part
    DIR/_gaps/part-<n>.parquet                                 the gap ledger
    DIR/_journal/trades.arrows                                 trades not yet rolled into parts

Everything that is not trades starts with `_` and everything half-written with `.`, which
pyarrow and pandas skip and a `symbol=*/*/*.parquet` glob (DuckDB) never matches, so a reader of
`DIR` sees only finished trade files.

Prices and quantities are DECIMAL(38, 18): the exchange sends at most 8 decimals and tick and step
sizes are never finer than 1e-8, so every value it can send fits exactly, with 20 integer digits
to spare; a value that does not fit is refused rather than rounded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

DECIMAL_SCALE = 18
DECIMAL_INTEGER_DIGITS = 38 - DECIMAL_SCALE
DECIMAL = pa.decimal128(38, DECIMAL_SCALE)
GAPS_DIR = "_gaps"
JOURNAL_DIR = "_journal"
JOURNAL = f"{JOURNAL_DIR}/trades.arrows"
_PART = re.compile(r"part-(\d+)\.parquet")

MILLIS = "ms"
MICROS = "us"
MICROS_THRESHOLD = 10**14
"""An exchange time in ms has 13 digits and one in µs 16: anything above this is µs."""

GAP_SCHEMA = pa.schema(
    [
        ("symbol", pa.string()),
        ("first_missing_id", pa.int64()),
        ("last_missing_id", pa.int64()),
        ("missing", pa.int64()),
        ("cause", pa.string()),
        ("recorded_at", pa.timestamp(MILLIS, tz="UTC")),
    ]
)


def trade_schema(unit: str) -> pa.Schema:
    """The columns of a trade part, times in the stream's `unit` ("ms" or "us")."""
    return pa.schema(
        [
            ("trade_id", pa.int64()),
            ("price", DECIMAL),
            ("quantity", DECIMAL),
            ("trade_time", pa.timestamp(unit, tz="UTC")),
            ("event_time", pa.timestamp(unit, tz="UTC")),
            ("buyer_is_maker", pa.bool_()),
            ("backfilled", pa.bool_()),
        ]
    )


def partition(root: Path, symbol: str, day: str) -> Path:
    return root / f"symbol={symbol}" / f"date={day}"


def part_number(path: Path) -> int | None:
    """The `n` of `part-<n>.parquet`, or None for any other name."""
    match = _PART.fullmatch(path.name)
    return int(match.group(1)) if match else None


def parts(folder: Path) -> list[Path]:
    """The finished parts in `folder`, in the order they were written."""
    if not folder.is_dir():
        return []
    found = [(part_number(p), p) for p in folder.iterdir()]
    return [p for n, p in sorted((n, p) for n, p in found if n is not None)]


def is_recording(root: Path) -> bool:
    """Whether `root` holds a recording (at least one `symbol=` folder)."""
    return root.is_dir() and any(p.name.startswith("symbol=") for p in root.iterdir())


def symbol_days(root: Path) -> Iterator[tuple[str, str, Path]]:
    """(symbol, day, folder) of every partition, by symbol and then day."""
    if not root.is_dir():
        return
    for symbol_dir in sorted(p for p in root.iterdir() if p.name.startswith("symbol=")):
        for day_dir in sorted(p for p in symbol_dir.iterdir() if p.name.startswith("date=")):
            yield symbol_dir.name.split("=", 1)[1], day_dir.name.split("=", 1)[1], day_dir


def write_atomically(table: pa.Table, path: Path) -> None:
    """Write `table` to `path` so that no reader ever sees part of it, and it survives a crash.

    The file is written under a hidden name, flushed to disk, renamed into place, and the rename
    itself is flushed by syncing the folder.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("wb") as handle:
        pq.write_table(table, handle, compression="zstd")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def next_part(folder: Path) -> Path:
    """The name of the next part in `folder`: one past the highest written so far."""
    written = parts(folder)
    number = (part_number(written[-1]) or 0) + 1 if written else 0
    return folder / f"part-{number}.parquet"


def read_gaps(root: Path) -> pa.Table:
    """The whole gap ledger (empty when no gap was ever announced)."""
    tables = [pq.read_table(p, schema=GAP_SCHEMA) for p in parts(root / GAPS_DIR)]
    return pa.concat_tables(tables) if tables else GAP_SCHEMA.empty_table()
