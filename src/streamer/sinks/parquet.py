"""`parquet://DIR`: every trade in a Hive-partitioned Parquet dataset, and every gap in a ledger.

`publish` must return only once a batch is durable, yet Parquet files should be large. So a batch
is first appended to a journal (one JSON line per trade, fsynced) and kept in memory; when the
journal reaches `roll_bytes` or its oldest trade `roll_seconds`, the buffered trades become one
new part per symbol and day, each written atomically, and the journal starts again. On open, a
journal left by a crash is rolled into parts first, so a restart appends new parts and never
rewrites old ones; a torn last line (the batch that was being written when the process died, and
that was therefore never acknowledged) is dropped.

The highest trade id per symbol is read from the parts' statistics at open, and any trade at or
below it is dropped: a batch sent again after `SinkUnavailable`, or trades a restarted stream
delivers once more, are recorded once. One process records into a folder at a time (a lock).
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import IO

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

from streamer.binance.events import GapNotice, TradeEvent
from streamer.recording.layout import (
    DECIMAL_INTEGER_DIGITS,
    DECIMAL_SCALE,
    GAP_SCHEMA,
    GAPS_DIR,
    JOURNAL_DIR,
    MICROS,
    MILLIS,
    next_part,
    parts,
    read_gaps,
    symbol_days,
    sync_folder,
    trade_schema,
    unit_of,
    write_atomically,
)
from streamer.sinks.base import SinkError, SinkEvent, SinkUnavailable

log = logging.getLogger(__name__)

ROLL_BYTES = 32 * 1024 * 1024
ROLL_SECONDS = 300.0
JOURNAL = "trades.jsonl"
LOCK = "lock"


class JournalTrade(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One trade as the journal keeps it, times already in the dataset's unit."""

    symbol: str
    trade_id: int
    price: Decimal
    quantity: Decimal
    trade_time: int
    event_time: int
    buyer_is_maker: bool
    backfilled: bool


_encoder = msgspec.json.Encoder(decimal_format="string")
_decoder = msgspec.json.Decoder(JournalTrade)


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
        self._buffer: list[JournalTrade] = []
        self._buffered_since: float | None = None
        self._unit: str | None = None
        self._journal: IO[bytes] | None = None
        self._lock: IO[bytes] | None = None

    @property
    def name(self) -> str:
        return f"parquet://{self.root}"

    @property
    def last_ids(self) -> Mapping[str, int]:
        """The highest trade id recorded per symbol: where a restarted recorder resumes."""
        return MappingProxyType(self._last_ids)

    async def open(self) -> None:
        await asyncio.to_thread(self._open)

    async def publish(self, events: Sequence[SinkEvent]) -> None:
        await asyncio.to_thread(self._publish, list(events))

    async def close(self) -> None:
        try:
            await asyncio.to_thread(self._close)
        except (OSError, SinkError) as error:
            log.error("%s: could not roll the last trades into parts: %s", self.name, error)

    # --- in a worker thread ----------------------------------------------------------------

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
            self._lock.close()
            self._lock = None
            raise SinkError(f"{self.name}: another process is recording into it") from None
        self._read_positions()
        self._recover_journal(journal_dir / JOURNAL)
        self._journal = (journal_dir / JOURNAL).open("ab")

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
        if not path.exists():
            return
        data = path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) < len(data):
            log.warning("%s: dropped a torn last journal line (an unconfirmed batch)", self.name)
        trades = _decoder.decode_lines(complete) if complete else []
        if trades and self._unit is None:
            self._unit = unit_of(trades[0].trade_time)
        fresh = [t for t in trades if t.trade_id > self._last_ids.get(t.symbol, -1)]
        if fresh:
            log.info("%s: rolling %d journalled trades into parts", self.name, len(fresh))
            self._buffer = fresh
            for trade in fresh:
                self._last_ids[trade.symbol] = trade.trade_id
            self._roll_parts()
        path.unlink()
        sync_folder(path.parent)

    def _publish(self, events: list[SinkEvent]) -> None:
        if self._journal is None:
            raise SinkUnavailable(f"{self.name} is not open")
        fresh: list[JournalTrade] = []
        gaps: list[GapNotice] = []
        last_ids = dict(self._last_ids)
        for event in events:
            if isinstance(event, GapNotice):
                key = (event.symbol, event.first_missing_id, event.last_missing_id)
                if key not in self._gaps:
                    gaps.append(event)
            elif event.trade_id > last_ids.get(event.symbol, -1):
                fresh.append(self._journal_trade(event))
                last_ids[event.symbol] = event.trade_id
        try:
            if fresh:
                self._journal.write(_encoder.encode_lines(fresh))
                self._journal.flush()
                os.fsync(self._journal.fileno())
            if gaps:
                self._write_gaps(gaps)
        except OSError as error:
            raise SinkUnavailable(f"{self.name}: {error}") from error
        self._last_ids = last_ids
        self._buffer.extend(fresh)
        if fresh and self._buffered_since is None:
            self._buffered_since = self._clock()
        if self._due():
            self._roll()

    def _journal_trade(self, event: TradeEvent) -> JournalTrade:
        unit = unit_of(event.trade_time)
        if self._unit is None:
            self._unit = unit
        trade_time, event_time = event.trade_time, event.event_time
        if unit != self._unit:
            if unit == MICROS:
                raise SinkError(
                    f"{self.name} records times in ms, but {event.symbol} sends µs: "
                    "record µs streams into another folder"
                )
            trade_time, event_time = trade_time * 1000, event_time * 1000
        for value in (event.price, event.quantity):
            if not fits(value):
                raise SinkError(
                    f"{self.name}: {event.symbol} trade {event.trade_id} has {value}, "
                    "which DECIMAL(38, 18) cannot hold exactly"
                )
        return JournalTrade(
            event.symbol,
            event.trade_id,
            event.price,
            event.quantity,
            trade_time,
            event_time,
            event.buyer_market_maker,
            event.backfilled,
        )

    def _write_gaps(self, gaps: list[GapNotice]) -> None:
        now = int(self._wall_clock() * 1000)
        table = pa.table(
            {
                "symbol": [g.symbol for g in gaps],
                "first_missing_id": [g.first_missing_id for g in gaps],
                "last_missing_id": [g.last_missing_id for g in gaps],
                "missing": [g.missing for g in gaps],
                "cause": [gap_cause(g) for g in gaps],
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
        """Buffered trades into parts, then an empty journal (a crash between the two is safe:
        the journal's trades are then at or below the parts' last ids and are dropped)."""
        assert self._journal is not None
        try:
            self._roll_parts()
            self._journal.truncate(0)
            self._journal.seek(0)
            os.fsync(self._journal.fileno())
        except OSError as error:
            raise SinkUnavailable(f"{self.name}: {error}") from error

    def _roll_parts(self) -> None:
        groups: dict[tuple[str, str], list[JournalTrade]] = defaultdict(list)
        divisor = 1000 if self._unit == MILLIS else 1_000_000
        for trade in self._buffer:
            day = datetime.fromtimestamp(trade.trade_time // divisor, UTC).date().isoformat()
            groups[trade.symbol, day].append(trade)
        schema = trade_schema(self._unit or MILLIS)
        for (symbol, day), trades in groups.items():
            table = pa.table(
                {
                    "trade_id": [t.trade_id for t in trades],
                    "price": [t.price for t in trades],
                    "quantity": [t.quantity for t in trades],
                    "trade_time": [t.trade_time for t in trades],
                    "event_time": [t.event_time for t in trades],
                    "buyer_is_maker": [t.buyer_is_maker for t in trades],
                    "backfilled": [t.backfilled for t in trades],
                },
                schema=schema,
            )
            folder = self.root / f"symbol={symbol}" / f"date={day}"
            write_atomically(table, next_part(folder))
        self._buffer = []
        self._buffered_since = None

    def _close(self) -> None:
        try:
            if self._journal is not None:
                if self._buffer:
                    self._roll()
                self._journal.close()
                self._journal = None
                (self.root / JOURNAL_DIR / JOURNAL).unlink(missing_ok=True)
        finally:
            if self._lock is not None:
                self._lock.close()
                self._lock = None


def gap_cause(notice: GapNotice) -> str:
    """Why the trades are missing: the notice's own cause where it carries one."""
    cause = getattr(notice, "cause", None)
    return str(cause) if cause else "not in the exchange's history"


def fits(value: Decimal) -> bool:
    """Whether DECIMAL(38, 18) holds `value` exactly (checked before it reaches the journal)."""
    if not value.is_finite() or value.adjusted() >= DECIMAL_INTEGER_DIGITS:
        return False
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= -DECIMAL_SCALE:
        return True
    return value == round(value, DECIMAL_SCALE)
