"""A recording made by `streamer record` as the mock's trade data, beside the CSV files.

`--data-dir DIR` may point at such a recording: each recorded symbol becomes a tape like a CSV
file's (sorted by id, holes the recorder could not fill played as synthetic trades), so a user's
own data drives the mock, the demo and backtests at the recorded pace or any `--speed`.
Prices and quantities are played with the exchange's 8 decimals wherever that is exact.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, localcontext
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from streamer.mock_exchange.data import Columns, DataError, Tape, build_tape
from streamer.recording.layout import MILLIS, is_recording, parts, symbol_days

EXCHANGE_PLACES = Decimal("1e-8")
DECIMAL_PRECISION = 40


def scan_recording(data_dir: Path | None) -> dict[str, list[Path]]:
    """The parts of a recording in `data_dir`, by symbol (empty when it is not one)."""
    if data_dir is None or not is_recording(data_dir):
        return {}
    found: dict[str, list[Path]] = {}
    for symbol, _day, folder in symbol_days(data_dir):
        found.setdefault(symbol, []).extend(parts(folder))
    return found


def is_recorded(paths: Iterable[Path]) -> bool:
    """Whether these files are a recording's parts rather than CSV trade files."""
    return any(path.suffix == ".parquet" for path in paths)


def load_recording(symbol: str, paths: Iterable[Path]) -> Tape:
    """One symbol's recorded parts as a tape, each trade id once, in id order."""
    paths = list(paths)
    try:
        table = pa.concat_tables([pq.read_table(path) for path in paths])
    except (OSError, pa.ArrowException) as error:
        raise DataError(f"{symbol}: cannot read the recording ({error})") from None
    if not table.num_rows:
        raise DataError(f"no trades for {symbol} in {', '.join(str(p) for p in paths)}")
    table = table.sort_by("trade_id")
    ids = table.column("trade_id")
    keep = pc.not_equal(ids.slice(1), ids.slice(0, len(ids) - 1))
    table = table.filter(pa.concat_arrays([pa.array([True]), *keep.chunks]))
    scale = 1000 if table.schema.field("trade_time").type.unit == MILLIS else 1
    return build_tape(
        symbol,
        Columns(
            ids=table.column("trade_id").to_pylist(),
            price=_plain(table.column("price")),
            qty=_plain(table.column("quantity")),
            trade_time_us=_micros(table.column("trade_time"), scale),
            event_time_us=_micros(table.column("event_time"), scale),
            maker=table.column("buyer_is_maker").to_pylist(),
        ),
    )


def _micros(column: pa.ChunkedArray, scale: int) -> list[int]:
    values: list[int] = pc.multiply(column.cast(pa.int64()), scale).to_pylist()
    return values


def _plain(column: pa.ChunkedArray) -> list[bytes]:
    """Decimals as the exchange writes them: 8 places, or every place a finer value needs."""
    values: list[Decimal] = column.to_pylist()
    with localcontext(prec=DECIMAL_PRECISION):
        return [_exchange_text(value) for value in values]


def _exchange_text(value: Decimal) -> bytes:
    short = value.quantize(EXCHANGE_PLACES)
    return format(short if short == value else value.normalize(), "f").encode()
