"""`parquet://DIR`: every trade in a Hive-partitioned Parquet dataset, and every gap in a ledger.

`publish` must return only once a batch is durable, yet Parquet files should be large. So each
batch becomes one Arrow record batch, appended to a journal (an Arrow IPC stream, fsynced) and
kept in memory; when the journal reaches `roll_bytes` or its oldest trade `roll_seconds`, the
buffered trades become one new part per symbol and day, each written atomically, and the journal
starts again. On open, a journal left by a crash is rolled into parts first, so a restart appends
new parts and never rewrites old ones; a torn last batch (the one being written when the process
died, and therefore never acknowledged) is dropped.

The highest trade id per symbol is read from the parts' statistics at open, and any trade at or
below it is dropped: a batch sent again after `SinkUnavailable`, or trades a restarted stream
delivers once more, are recorded once. One process records into a folder at a time (a lock).
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any
from urllib.parse import unquote, urlsplit

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from streamer.events import GapNotice, TradeEvent
from streamer.recording.layout import (
    DECIMAL,
    DECIMAL_INTEGER_DIGITS,
    DECIMAL_SCALE,
    GAP_SCHEMA,
    GAPS_DIR,
    JOURNAL,
    JOURNAL_DIR,
    MICROS,
    MICROS_THRESHOLD,
    MILLIS,
    next_part,
    partition,
    parts,
    read_gaps,
    symbol_days,
    sync_folder,
    trade_schema,
    write_atomically,
)
from streamer.sinks.base import SinkError, SinkEvent, SinkUnavailable
from streamer.sinks.urls import InvalidSinkUrl, SinkUrl

log = logging.getLogger(__name__)

ROLL_BYTES = 32 * 1024 * 1024
ROLL_SECONDS = 300.0
GAP_CAUSE = "announced: not in the exchange's history, or lost before the recording"
LOCK = "lock"
DAY_SECONDS = 86_400

JOURNAL_SCHEMA = pa.schema(
    [
        ("symbol", pa.string()),
        ("trade_id", pa.int64()),
        ("price", DECIMAL),
        ("quantity", DECIMAL),
        ("trade_time", pa.int64()),
        ("event_time", pa.int64()),
        ("buyer_is_maker", pa.bool_()),
        ("backfilled", pa.bool_()),
    ]
)
"""A journalled batch: trades of any symbols, times as integers in the dataset's unit."""


class ParquetSink:
    """Records trades under `root` (see `streamer.recording.layout` for the files it writes)."""

    def __init__(
        self,
        root: Path,
        *,
        roll_bytes: int = ROLL_BYTES,
        roll_seconds: float = ROLL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = Path(root)
        self.roll_bytes = roll_bytes
        self.roll_seconds = roll_seconds
        self._clock = clock
        self._wall_clock = wall_clock
        self._last_ids: dict[str, int] = {}
        self._gaps: set[tuple[str, int, int]] = set()
        self._buffer: list[pa.RecordBatch] = []
        self._buffered_since: float | None = None
        self._unit: str | None = None
        self._journal: IO[bytes] | None = None
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None
        self._lock: IO[bytes] | None = None
        self._busy = threading.Lock()
        self.duplicates = 0
        """Trades dropped because the recording already held them (resends, restarts)."""

    @property
    def name(self) -> str:
        return f"parquet://{self.root}"

    @property
    def last_ids(self) -> Mapping[str, int]:
        """The highest trade id recorded per symbol: where a restarted recorder resumes."""
        return MappingProxyType(self._last_ids)

    async def open(self) -> None:
        await asyncio.to_thread(self._serialized, self._open)

    async def publish(self, events: Sequence[SinkEvent], payloads: Sequence[bytes]) -> None:
        """Columns come from the events themselves; the documents are not needed."""
        await asyncio.to_thread(self._serialized, self._publish, list(events))

    async def close(self) -> None:
        try:
            await asyncio.to_thread(self._serialized, self._close)
        except (OSError, SinkError) as error:
            log.error("%s: could not roll the last trades into parts: %s", self.name, error)

    # --- in a worker thread ----------------------------------------------------------------

    def _serialized(self, work: Callable[..., None], *args: Any) -> None:
        """One file operation at a time: a cancelled `publish` goes on in its thread, and the
        batch sent again meanwhile must wait for it, then find its trades already held."""
        with self._busy:
            work(*args)

    def _open(self) -> None:
        journal_dir = self.root / JOURNAL_DIR
        try:
            journal_dir.mkdir(parents=True, exist_ok=True)
            self._lock = (journal_dir / LOCK).open("ab")
        except OSError as error:
            raise SinkUnavailable(f"{self.name}: {error}") from error
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._release()
            raise SinkError(f"{self.name}: another process is recording into it") from None
        try:
            self._read_positions()
            self._recover_journal(self.root / JOURNAL)
        except OSError as error:
            self._release()
            raise SinkUnavailable(f"{self.name}: {error}") from error
        except pa.ArrowException as error:
            self._release()
            raise SinkError(f"{self.name}: a file of the recording is damaged: {error}") from None

    def _read_positions(self) -> None:
        """Last ids from the parts' footers (no data read), the unit, and the ledger's gaps."""
        for symbol, _day, folder in symbol_days(self.root):
            for path in parts(folder):
                metadata = pq.read_metadata(path)
                if self._unit is None:
                    self._unit = metadata.schema.to_arrow_schema().field("trade_time").type.unit
                for group in range(metadata.num_row_groups):
                    stats = metadata.row_group(group).column(0).statistics
                    if stats is not None and stats.has_min_max:
                        self._last_ids[symbol] = max(self._last_ids.get(symbol, -1), stats.max)
        gaps = read_gaps(self.root).to_pydict()
        self._gaps = set(
            zip(gaps["symbol"], gaps["first_missing_id"], gaps["last_missing_id"], strict=True)
        )

    def _recover_journal(self, path: Path) -> None:
        """Journalled batches at or past the parts' last ids become new parts."""
        if not path.exists():
            return
        batches = read_journal(path)
        fresh = [kept for batch in batches if (kept := self._unheld(batch)).num_rows]
        if fresh:
            if self._unit is None:
                self._unit = unit_of(fresh[0].column("trade_time"))
            log.info(
                "%s: rolling %d journalled trades into parts",
                self.name,
                sum(b.num_rows for b in fresh),
            )
            self._buffer = fresh
            self._roll_parts()
        path.unlink()
        sync_folder(path.parent)

    def _unheld(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The rows of a journalled batch past each symbol's last id, which they then move."""
        symbols = batch.column("symbol").to_pylist()
        ids = batch.column("trade_id").to_pylist()
        keep = []
        for symbol, trade_id in zip(symbols, ids, strict=True):
            fresh = trade_id > self._last_ids.get(symbol, -1)
            keep.append(fresh)
            if fresh:
                self._last_ids[symbol] = trade_id
        return batch.filter(pa.array(keep, pa.bool_()))

    def _publish(self, events: list[SinkEvent]) -> None:
        if self._lock is None:
            raise SinkUnavailable(f"{self.name} is not open")
        trades: list[TradeEvent] = []
        gaps: list[GapNotice] = []
        last_ids = dict(self._last_ids)
        for event in events:
            if isinstance(event, GapNotice):
                if (event.symbol, event.first_missing_id, event.last_missing_id) not in self._gaps:
                    gaps.append(event)
            elif event.trade_id > last_ids.get(event.symbol, -1):
                trades.append(event)
                last_ids[event.symbol] = event.trade_id
        batch = self._batch_of(trades) if trades else None
        try:
            if batch is not None:
                self._append(batch)
            if gaps:
                self._write_gaps(gaps)
        except OSError as error:
            raise SinkUnavailable(f"{self.name}: {error}") from error
        self._last_ids = last_ids
        self.duplicates += sum(isinstance(e, TradeEvent) for e in events) - len(trades)
        if batch is not None:
            self._buffer.append(batch)
            if self._buffered_since is None:
                self._buffered_since = self._clock()
        if self._due():
            self._roll()

    def _batch_of(self, trades: list[TradeEvent]) -> pa.RecordBatch:
        """The trades as one journal batch; a value the columns cannot hold exactly is refused."""
        try:
            prices = pa.array([t.price for t in trades], DECIMAL)
            quantities = pa.array([t.quantity for t in trades], DECIMAL)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            bad = next((t for t in trades if not (fits(t.price) and fits(t.quantity))), None)
            if bad is None:
                raise
            raise SinkError(
                f"{self.name}: {bad.symbol} trade {bad.trade_id} has price {bad.price} and "
                f"quantity {bad.quantity}; DECIMAL(38, 18) cannot hold them exactly"
            ) from None
        trade_times = pa.array([t.trade_time for t in trades], pa.int64())
        if self._unit is None:
            self._unit = unit_of(trade_times)
        return pa.record_batch(
            [
                pa.array([t.symbol for t in trades], pa.string()),
                pa.array([t.trade_id for t in trades], pa.int64()),
                prices,
                quantities,
                self._in_unit(trade_times, trades[0].symbol),
                self._in_unit(pa.array([t.event_time for t in trades], pa.int64()), ""),
                pa.array([t.buyer_market_maker for t in trades], pa.bool_()),
                pa.array([t.backfilled for t in trades], pa.bool_()),
            ],
            schema=JOURNAL_SCHEMA,
        )

    def _in_unit(self, times: pa.Array, symbol: str) -> pa.Array:
        """Times in the dataset's unit: ms become µs in a µs dataset; µs in a ms one is refused."""
        micro = pc.greater_equal(times, MICROS_THRESHOLD)
        if self._unit == MICROS:
            return pc.if_else(micro, times, pc.multiply(times, 1000))
        if pc.any(micro).as_py():
            raise SinkError(
                f"{self.name} records times in ms, but {symbol or 'a stream'} sends µs: "
                "record µs streams into another folder"
            )
        return times

    def _append(self, batch: pa.RecordBatch) -> None:
        if self._writer is None:
            self._journal = (self.root / JOURNAL).open("wb")
            self._writer = pa.ipc.new_stream(self._journal, JOURNAL_SCHEMA)
        assert self._journal is not None
        self._writer.write_batch(batch)
        self._journal.flush()
        os.fsync(self._journal.fileno())

    def _write_gaps(self, gaps: list[GapNotice]) -> None:
        now = int(self._wall_clock() * 1000)
        table = pa.table(
            {
                "symbol": [g.symbol for g in gaps],
                "first_missing_id": [g.first_missing_id for g in gaps],
                "last_missing_id": [g.last_missing_id for g in gaps],
                "missing": [g.missing for g in gaps],
                "cause": [GAP_CAUSE] * len(gaps),
                "recorded_at": [now] * len(gaps),
            },
            schema=GAP_SCHEMA,
        )
        write_atomically(table, next_part(self.root / GAPS_DIR))
        self._gaps.update((g.symbol, g.first_missing_id, g.last_missing_id) for g in gaps)

    def _due(self) -> bool:
        if self._journal is None or self._buffered_since is None:
            return False
        old = self._clock() - self._buffered_since >= self.roll_seconds
        return old or self._journal.tell() >= self.roll_bytes

    def _roll(self) -> None:
        """Buffered trades into parts, then no journal (a crash between the two is safe: the
        journal's trades are then at or below the parts' last ids and are dropped at open)."""
        try:
            self._roll_parts()
            self._end_journal()
        except OSError as error:
            raise SinkUnavailable(f"{self.name}: {error}") from error

    def _end_journal(self) -> None:
        """Every journalled trade is in a part now: the journal goes."""
        if self._journal is not None:
            self._close_journal()
            (self.root / JOURNAL).unlink()
            sync_folder(self.root / JOURNAL_DIR)

    def _close_journal(self) -> None:
        """Release the journal's file, keeping what it holds for the next open."""
        if self._writer is not None:
            self._writer.close()
        if self._journal is not None:
            self._journal.close()
        self._writer = None
        self._journal = None

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _roll_parts(self) -> None:
        """One new part per symbol and day; after a failure only the unwritten ones stay."""
        table = pa.Table.from_batches(self._buffer, JOURNAL_SCHEMA)
        seconds = 1000 if self._unit == MILLIS else 1_000_000
        days = pc.divide(table.column("trade_time"), seconds * DAY_SECONDS)
        groups = []
        for symbol in pc.unique(table.column("symbol")).to_pylist():
            mine = pc.equal(table.column("symbol"), symbol)
            for day in pc.unique(pc.filter(days, mine)).to_pylist():
                groups.append((symbol, day, table.filter(pc.and_(mine, pc.equal(days, day)))))
        schema = trade_schema(self._unit or MILLIS)
        for done, (symbol, day, rows) in enumerate(groups):
            part = pa.table(
                [rows.column(field.name).cast(field.type) for field in schema], schema=schema
            )
            date = datetime.fromtimestamp(day * DAY_SECONDS, UTC).date().isoformat()
            try:
                write_atomically(part, next_part(partition(self.root, symbol, date)))
            except OSError:
                self._buffer = [b for _, _, left in groups[done:] for b in left.to_batches()]
                raise
        self._buffer = []
        self._buffered_since = None

    def _close(self) -> None:
        try:
            if self._buffer:
                self._roll()
        finally:
            self._close_journal()
            self._release()


def read_journal(path: Path) -> list[pa.RecordBatch]:
    """The complete batches of a journal; a torn last one (never acknowledged) is left out."""
    batches: list[pa.RecordBatch] = []
    try:
        with pa.OSFile(str(path)) as source, pa.ipc.open_stream(source) as reader:
            for batch in reader:
                batches.append(batch)
    except (pa.ArrowInvalid, OSError) as error:
        log.warning("%s: dropped a torn journal tail (an unconfirmed batch): %s", path, error)
    return batches


def unit_of(times: pa.Array | pa.ChunkedArray) -> str:
    """µs if any exchange time is in µs, else ms (a ms time has 13 digits, a µs one 16)."""
    return MICROS if pc.any(pc.greater_equal(times, MICROS_THRESHOLD)).as_py() else MILLIS


def fits(value: Decimal) -> bool:
    """Whether DECIMAL(38, 18) holds `value` exactly."""
    if not value.is_finite() or value.adjusted() >= DECIMAL_INTEGER_DIGITS:
        return False
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= -DECIMAL_SCALE:
        return True
    return value == round(value, DECIMAL_SCALE)


def from_url(url: SinkUrl) -> ParquetSink:
    """`parquet:///absolute/dir` or `parquet://relative/dir`; `?roll_mb=&roll_seconds=`."""
    url.check_params({"roll_mb", "roll_seconds"})
    split = urlsplit(url.text)
    folder = unquote(split.netloc + split.path)
    if not folder:
        raise InvalidSinkUrl(f"{url.text!r} names no folder: write parquet:///path/to/dir")
    roll_mb = url.number("roll_mb", ROLL_BYTES / 2**20, float)
    roll_seconds = url.number("roll_seconds", ROLL_SECONDS, float)
    if roll_mb <= 0 or roll_seconds <= 0:
        raise InvalidSinkUrl(f"{url.label}: roll_mb and roll_seconds must be positive")
    return ParquetSink(Path(folder), roll_bytes=int(roll_mb * 2**20), roll_seconds=roll_seconds)
