"""Recorded trades on disk, turned into one gap-free tape per symbol.

Two formats are read: the recorder's 13-column `;` files (gzip) and Binance's public historical
trade files (7 columns, plain or zipped, times in ms or µs). The recorder lost trades across its
reconnects; a real exchange has no holes, so each hole is filled with synthetic trades (the price
and quantity of the trade before it, times spread evenly across the hole). The stream and the
history endpoint both read the filled tape, so they agree the way Binance's do.
"""

from __future__ import annotations

import gzip
import io
import re
import zipfile
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

TRADE_FILE_SUFFIXES = (".csv.gz", ".csv", ".zip")
_MICROS_THRESHOLD = 10**14  # a 13-digit ms time is below it, a 16-digit µs time above
_DECIMAL = re.compile(rb"[0-9]+(\.[0-9]+)?")


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
            found.setdefault(path.name.split("-", 1)[0].upper(), []).append(path)
    return found


def load_tape(symbol: str, paths: Iterable[Path]) -> Tape:
    """Read every file of one symbol, keep the first row of each id, fill the holes."""
    rows: dict[int, Row] = {}
    for path in paths:
        for row in read_rows(path):
            rows.setdefault(row.trade_id, row)
    if not rows:
        raise DataError(f"no trades for {symbol} in {', '.join(str(p) for p in paths)}")
    return build_tape(symbol, [rows[trade_id] for trade_id in sorted(rows)])


def build_tape(symbol: str, rows: list[Row]) -> Tape:
    """A gap-free tape from rows sorted by id: holes get synthetic trades."""
    trade_times: array[int] = array("q")
    event_times: array[int] = array("q")
    prices: list[bytes] = []
    qtys: list[bytes] = []
    makers: list[bool] = []
    filled = 0
    previous: Row | None = None
    for row in rows:
        if previous is not None and row.trade_id > previous.trade_id + 1:
            missing = row.trade_id - previous.trade_id - 1
            filled += missing
            span = max(0, row.trade_time_us - previous.trade_time_us)
            lag = previous.event_time_us - previous.trade_time_us
            for k in range(1, missing + 1):
                at = previous.trade_time_us + span * k // (missing + 1)
                trade_times.append(at)
                event_times.append(at + lag)
                prices.append(previous.price)
                qtys.append(previous.qty)
                makers.append(previous.maker)
        trade_times.append(row.trade_time_us)
        event_times.append(row.event_time_us)
        prices.append(row.price)
        qtys.append(row.qty)
        makers.append(row.maker)
        previous = row
    return Tape(symbol, rows[0].trade_id, trade_times, event_times, prices, qtys, makers, filled)


def read_rows(path: Path) -> Iterator[Row]:
    """The rows of one file in either format, told apart by their column count."""
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
        return io.BytesIO(data).read().splitlines()
    return path.read_bytes().splitlines()


def _parse(line: bytes) -> Row:
    row = _columns(line)
    if not (_DECIMAL.fullmatch(row.price) and _DECIMAL.fullmatch(row.qty)):
        raise ValueError("price and quantity must be plain decimals")
    return row


def _columns(line: bytes) -> Row:
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
