"""Recorded trades on disk, turned into one gap-free tape per symbol.

Two formats are read: the recorder's 13-column `;` files (gzip) and Binance's public historical
trade files (7 columns, plain or zipped, times in ms or µs). The recorder lost trades across its
reconnects; a real exchange has no holes, so each hole is filled with synthetic trades (the price
and quantity of the trade before it, times spread evenly across the hole). The stream and the
history endpoint both read the filled tape, so they agree the way Binance's do.
"""

from __future__ import annotations

import gzip
import re
import zipfile
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from itertools import pairwise
from pathlib import Path

from streamer.symbols import ascii_upper

TRADE_FILE_SUFFIXES = (".csv.gz", ".csv", ".zip")
_MICROS_THRESHOLD = 10**14  # a 13-digit ms time is below it, a 16-digit µs time above
_DECIMAL = re.compile(rb"[0-9]+(\.[0-9]+)?")
_DECIMALS = re.compile(rb"[0-9]+(?:\.[0-9]+)?(?:\n[0-9]+(?:\.[0-9]+)?)*")


class DataError(ValueError):
    """A trade file that cannot be read; the message names the file and the line."""


@dataclass(frozen=True, slots=True)
class Row:
    """One recorded trade, times in microseconds."""

    trade_id: int
    price: bytes
    qty: bytes
    trade_time_us: int
    event_time_us: int
    maker: bool


@dataclass(frozen=True)
class Tape:
    """One symbol's trades in id order without holes: what one pass of the replay plays."""

    symbol: str
    first_id: int
    trade_time_us: array[int]
    event_time_us: array[int]
    price: list[bytes]
    qty: list[bytes]
    maker: list[bool]
    filled: int

    def __len__(self) -> int:
        return len(self.price)

    @property
    def last_id(self) -> int:
        return self.first_id + len(self) - 1


def scan_trade_files(data_dir: Path | None) -> dict[str, list[Path]]:
    """Trade files under `data_dir/trades`, by upper-case symbol (the file name's first part)."""
    if data_dir is None or not (data_dir / "trades").is_dir():
        return {}
    found: dict[str, list[Path]] = {}
    for path in sorted((data_dir / "trades").iterdir()):
        if path.is_file() and path.name.endswith(TRADE_FILE_SUFFIXES):
            found.setdefault(ascii_upper(path.name.split("-", 1)[0]), []).append(path)
    return found


@dataclass
class Columns:
    """Trades of one or more files, column by column, in file order (times in microseconds)."""

    ids: list[int] = field(default_factory=list)
    price: list[bytes] = field(default_factory=list)
    qty: list[bytes] = field(default_factory=list)
    trade_time_us: list[int] = field(default_factory=list)
    event_time_us: list[int] = field(default_factory=list)
    maker: list[bool] = field(default_factory=list)

    def extend(self, other: Columns) -> None:
        for name in ("ids", "price", "qty", "trade_time_us", "event_time_us", "maker"):
            getattr(self, name).extend(getattr(other, name))

    def take(self, order: list[int]) -> Columns:
        """The rows at the given positions, in that order."""
        return Columns(
            ids=[self.ids[i] for i in order],
            price=[self.price[i] for i in order],
            qty=[self.qty[i] for i in order],
            trade_time_us=[self.trade_time_us[i] for i in order],
            event_time_us=[self.event_time_us[i] for i in order],
            maker=[self.maker[i] for i in order],
        )


def load_tape(symbol: str, paths: Iterable[Path]) -> Tape:
    """Read every file of one symbol, keep the first row of each id, fill the holes."""
    paths = list(paths)
    columns = Columns()
    for path in paths:
        columns.extend(read_columns(path))
    if not columns.ids:
        raise DataError(f"no trades for {symbol} in {', '.join(str(p) for p in paths)}")
    ids = columns.ids
    order = sorted(range(len(ids)), key=ids.__getitem__)
    if len(set(ids)) != len(ids):
        order = [k for n, k in enumerate(order) if n == 0 or ids[k] != ids[order[n - 1]]]
    return build_tape(symbol, columns.take(order))


def build_tape(symbol: str, rows: Columns) -> Tape:
    """A gap-free tape from columns sorted by unique id: holes get synthetic trades."""
    ids = rows.ids
    tape = Tape(symbol, ids[0], array("q"), array("q"), [], [], [], 0)
    holes = [k for k, (a, b) in enumerate(pairwise(ids)) if b - a > 1]
    start = 0
    filled = 0
    for k in [*holes, len(ids) - 1]:
        tape.trade_time_us.extend(rows.trade_time_us[start : k + 1])
        tape.event_time_us.extend(rows.event_time_us[start : k + 1])
        tape.price.extend(rows.price[start : k + 1])
        tape.qty.extend(rows.qty[start : k + 1])
        tape.maker.extend(rows.maker[start : k + 1])
        start = k + 1
        if k == len(ids) - 1:
            break
        missing = ids[k + 1] - ids[k] - 1
        filled += missing
        before, after = rows.trade_time_us[k], rows.trade_time_us[k + 1]
        span = max(0, after - before)
        lag = rows.event_time_us[k] - before
        times = [before + span * n // (missing + 1) for n in range(1, missing + 1)]
        tape.trade_time_us.extend(times)
        tape.event_time_us.extend(t + lag for t in times)
        tape.price.extend([rows.price[k]] * missing)
        tape.qty.extend([rows.qty[k]] * missing)
        tape.maker.extend([rows.maker[k]] * missing)
    return replace(tape, filled=filled)


def read_columns(path: Path) -> Columns:
    """One file's trades, parsed a column at a time; a bad row is reported by `read_rows`."""
    lines = [line for line in _lines(path) if line.strip()]
    try:
        return _parse_columns(lines)
    except (ValueError, IndexError):
        for _ in read_rows(path):
            pass
        raise DataError(f"{path}: not a trade file") from None


def _parse_columns(lines: list[bytes]) -> Columns:
    if not lines:
        return Columns()
    if b";" in lines[0]:
        rows = [line.split(b";") for line in lines]
        if any(len(row) != 13 for row in rows):
            raise ValueError("expected 13 columns")
        cols = list(zip(*rows, strict=True))
        columns = Columns(
            ids=list(map(int, cols[4])),
            price=list(cols[5]),
            qty=list(cols[6]),
            trade_time_us=[t * 1000 for t in map(int, cols[9])],
            event_time_us=[t * 1000 for t in map(int, cols[2])],
            maker=[v.strip().lower() in (b"t", b"true") for v in cols[10]],
        )
    else:
        rows = [line.split(b",") for line in lines]
        if any(len(row) != 7 for row in rows):
            raise ValueError("expected 7 columns")
        cols = list(zip(*rows, strict=True))
        times = [t if t >= _MICROS_THRESHOLD else t * 1000 for t in map(int, cols[4])]
        columns = Columns(
            ids=list(map(int, cols[0])),
            price=list(cols[1]),
            qty=list(cols[2]),
            trade_time_us=times,
            event_time_us=list(times),
            maker=[v.strip().lower() == b"true" for v in cols[5]],
        )
    if not _DECIMALS.fullmatch(b"\n".join(columns.price + columns.qty)):
        raise ValueError("price and quantity must be plain decimals")
    return columns


def read_rows(path: Path) -> Iterator[Row]:
    """The rows of one file, one at a time: slower than `read_columns`, but names a bad line."""
    for number, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        try:
            yield _parse(line)
        except (ValueError, IndexError) as exc:
            raise DataError(f"{path}:{number}: not a trade row ({exc}): {line[:120]!r}") from None


def _lines(path: Path) -> list[bytes]:
    if path.name.endswith(".gz"):
        with gzip.open(path, "rb") as handle:
            return handle.read().splitlines()
    if path.name.endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            members = [name for name in archive.namelist() if name.endswith(".csv")]
            data = b"".join(archive.read(name) for name in members)
        return data.splitlines()
    return path.read_bytes().splitlines()


def _parse(line: bytes) -> Row:
    row = _parse_row(line)
    if not (_DECIMAL.fullmatch(row.price) and _DECIMAL.fullmatch(row.qty)):
        raise ValueError("price and quantity must be plain decimals")
    return row


def _parse_row(line: bytes) -> Row:
    if b";" in line:
        cols = line.split(b";")
        if len(cols) != 13:
            raise ValueError(f"expected 13 columns, found {len(cols)}")
        return Row(
            trade_id=int(cols[4]),
            price=cols[5],
            qty=cols[6],
            trade_time_us=int(cols[9]) * 1000,
            event_time_us=int(cols[2]) * 1000,
            maker=cols[10].strip().lower() in (b"t", b"true"),
        )
    cols = line.split(b",")
    if len(cols) != 7:
        raise ValueError(f"expected 7 columns, found {len(cols)}")
    time = int(cols[4])
    time_us = time if time >= _MICROS_THRESHOLD else time * 1000
    return Row(
        trade_id=int(cols[0]),
        price=cols[1],
        qty=cols[2],
        trade_time_us=time_us,
        event_time_us=time_us,
        maker=cols[5].strip().lower() == b"true",
    )
