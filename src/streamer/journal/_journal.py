"""The journal: every event the stream hands out, on local disk, read by each sink at its own pace.

Why a journal and not a queue per sink: a queue in memory holds minutes of trades at best, and a
broker outage longer than that lost what the exchange still had. The journal holds what the disk
budget allows (a gigabyte by default, hours of every symbol), survives `kill -9`, and costs one
encoding and one append per batch however many sinks read it.

Layout of a journal directory:

- `segments/<position>.arrow`: Arrow IPC stream files, named by the position (the journal-wide
  index, from 0) of their first event. One record batch per append, with the columns of `SCHEMA`:
  the event's kind, symbol and trade ids (what losses and lag are computed from without decoding)
  and the event's JSON document, encoded once for every sink.
- `cursors/<name>.json`: one per sink, its committed position and the trade ranges it lost to the
  disk budget, replaced atomically on every commit.
- `LOCK`: held with `flock` while a process has the journal open.

A process that dies mid-append leaves a torn last batch: opening the journal keeps the batches
before it and starts a new segment, so writing never continues a file that might be torn. A
damaged segment anywhere else is an error naming the file.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import errno
import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO

import msgspec
import pyarrow as pa

from streamer.errors import StreamerError
from streamer.events import Event, GapNotice, TradeEvent
from streamer.wire import decode_events, encode_events

log = logging.getLogger(__name__)

JournalEvent = TradeEvent | GapNotice

TRADE = 0
GAP = 1

SCHEMA = pa.schema(
    [
        pa.field("kind", pa.uint8(), nullable=False),
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("first_id", pa.int64(), nullable=False),
        pa.field("last_id", pa.int64(), nullable=False),
        pa.field("appended", pa.float64(), nullable=False),
        pa.field("payload", pa.binary(), nullable=False),
    ]
)

GIB = 1 << 30
MIB = 1 << 20
_DECODED_BYTES = 200
"""About what one decoded event costs in memory beside its row, for the memory budget."""


class JournalError(StreamerError):
    """The journal cannot be opened or read: a damaged segment, a bad directory."""


class JournalLocked(JournalError):
    """Another process has this journal open."""


class JournalFull(JournalError):
    """The disk holding the journal is full: what could not be written is announced lost."""


class FsyncPolicy(StrEnum):
    """When appended events are forced to the disk (what a power cut can lose)."""

    ALWAYS = "always"
    """Every append: a power cut loses nothing that was appended; the slowest."""
    INTERVAL = "interval"
    """At most `fsync_interval` seconds apart: a power cut loses at most that much."""
    NEVER = "never"
    """When the operating system decides: a power cut can lose its whole write-back delay."""


@dataclass(frozen=True, slots=True)
class JournalOptions:
    """How much the journal may hold, and how hard it tries to keep it through a power cut."""

    max_bytes: int = GIB
    """The disk budget: beyond it the oldest segment goes, and the cursors that had not read it
    record its trades as lost (to be re-fetched from the exchange)."""
    segment_bytes: int = 64 * MIB
    """A segment is closed and a new one begun past this size; the budget frees whole ones."""
    memory_bytes: int = 64 * MIB
    """The newest events are also kept decoded in memory, so cursors that keep up never read
    the disk."""
    fsync: FsyncPolicy = FsyncPolicy.INTERVAL
    fsync_interval: float = 0.2

    def __post_init__(self) -> None:
        if self.segment_bytes < 1 or self.max_bytes < 2 * self.segment_bytes:
            raise ValueError(
                f"the journal's budget ({self.max_bytes} bytes) must hold at least two "
                f"segments of {self.segment_bytes} bytes"
            )
        if self.memory_bytes < 0 or self.fsync_interval <= 0:
            raise ValueError("memory_bytes must be >= 0 and fsync_interval > 0")


def options_for(max_bytes: int, *, fsync: FsyncPolicy = FsyncPolicy.INTERVAL) -> JournalOptions:
    """Options for a budget of `max_bytes`: segments of a sixteenth of it, at most 64 MiB."""
    max_bytes = int(max_bytes)  # a subclass such as pydantic's ByteSize encodes nowhere
    segment = max(1, min(64 * MIB, max_bytes // 16))
    return JournalOptions(max_bytes=max_bytes, segment_bytes=segment, fsync=fsync)


@dataclass(frozen=True, slots=True)
class JournalBatch:
    """Events `start..end-1` of the journal, as a cursor reads them."""

    start: int
    end: int
    events: list[JournalEvent]
    payloads: list[bytes]


@dataclass(slots=True)
class _Segment:
    start: int
    path: Path
    count: int = 0
    bytes: int = 0
    first_appended: float = 0.0

    @property
    def end(self) -> int:
        return self.start + self.count


@dataclass(slots=True)
class _Chunk:
    """One append, kept decoded in memory."""

    start: int
    events: list[JournalEvent]
    payloads: list[bytes]
    appended: float
    size: int


class _CursorState(msgspec.Struct):
    position: int
    lost: dict[str, list[tuple[int, int]]] = {}


@dataclass(slots=True)
class _Reader:
    """A cursor's open reader of one segment, so reading on is sequential, not from the top."""

    segment: _Segment
    batches: Iterator[pa.RecordBatch]
    position: int
    """The position of the first row of `pending` (or of the next batch)."""
    pending: pa.RecordBatch | None = None


def _chunk_start(chunk: _Chunk) -> int:
    return chunk.start


def _segment_start(segment: _Segment) -> int:
    return segment.start


def _ranges_of(table: Iterable[pa.RecordBatch]) -> dict[str, list[tuple[int, int]]]:
    """Per symbol, the trade ids the rows cover (trades and announced gaps alike)."""
    spans: dict[str, list[int]] = {}
    for batch in table:
        symbols = batch.column(1).to_pylist()
        firsts = batch.column(2).to_pylist()
        lasts = batch.column(3).to_pylist()
        for symbol, first, last in zip(symbols, firsts, lasts, strict=True):
            span = spans.get(symbol)
            if span is None:
                spans[symbol] = [first, last]
            else:
                span[0] = min(span[0], first)
                span[1] = max(span[1], last)
    return {symbol: [(span[0], span[1])] for symbol, span in spans.items()}


def _merge(
    into: dict[str, list[tuple[int, int]]], more: Mapping[str, list[tuple[int, int]]]
) -> None:
    for symbol, ranges in more.items():
        merged = sorted([*into.get(symbol, []), *ranges])
        out: list[tuple[int, int]] = []
        for first, last in merged:
            if out and first <= out[-1][1] + 1:
                out[-1] = (out[-1][0], max(out[-1][1], last))
            else:
                out.append((first, last))
        into[symbol] = out


def _event_range(event: JournalEvent) -> tuple[int, int]:
    if type(event) is TradeEvent:
        return event.trade_id, event.trade_id
    assert isinstance(event, GapNotice)
    return event.first_missing_id, event.last_missing_id


class Cursor:
    """One reader's position in the journal, committed to disk: a sink's way through it.

    `read` hands out what follows the last read (waiting for it), `commit` records that the
    sink made it durable at its destination, so a restart goes on from there. `lost` holds the
    trade ranges the disk budget took before this cursor read them, until the reader has
    re-fetched or announced them (`settle`).
    """

    def __init__(self, journal: Journal, name: str, state: _CursorState) -> None:
        self.journal = journal
        self.name = name
        self.committed = state.position
        self.read_to = state.position
        self.lost: dict[str, list[tuple[int, int]]] = state.lost
        self.lost_total = sum(b - a + 1 for r in state.lost.values() for a, b in r)
        self._reader: _Reader | None = None
        self._path = journal.path / "cursors" / f"{name}.json"

    @property
    def lag(self) -> int:
        """Events appended that this cursor has not committed."""
        return self.journal.end - self.committed

    def lag_seconds(self, now: float | None = None) -> float:
        """How long ago the oldest event this cursor has not committed was appended."""
        if self.committed >= self.journal.end:
            return 0.0
        appended = self.journal.appended_at(self.committed)
        return max(0.0, (time.time() if now is None else now) - appended)

    async def read(self, limit: int) -> JournalBatch:
        """The next events (at most `limit`), waiting until there is at least one."""
        while self.read_to >= self.journal.end:
            await self.journal.wait_beyond(self.read_to)
        return self.read_nowait(limit)

    def read_nowait(self, limit: int) -> JournalBatch:
        """The next events (at most `limit`; none when the cursor is at the end)."""
        start = self.read_to
        events, payloads = self.journal.slice(self, start, limit)
        self.read_to = start + len(events)
        return JournalBatch(start, self.read_to, events, payloads)

    def rewind(self) -> None:
        """Read again from the committed position (what a failed delivery does)."""
        self.read_to = self.committed
        self._reader = None

    def commit(self, position: int) -> None:
        """Everything before `position` is durable at the reader's destination."""
        if position <= self.committed:
            return
        self.committed = position
        self.read_to = max(self.read_to, position)
        self.save()
        self.journal.trim()

    def settle(self, symbol: str, first: int, last: int) -> None:
        """A lost range was re-fetched or announced: it is no longer owed."""
        ranges = self.lost.get(symbol, [])
        kept = [(a, b) for a, b in ranges if not (a == first and b == last)]
        if kept:
            self.lost[symbol] = kept
        else:
            self.lost.pop(symbol, None)
        self.save()

    def _lose(self, ranges: Mapping[str, list[tuple[int, int]]], position: int) -> None:
        _merge(self.lost, ranges)
        self.lost_total += sum(b - a + 1 for r in ranges.values() for a, b in r)
        if position > self.committed:
            self.committed = position
        if position > self.read_to:
            self.read_to = position
            self._reader = None
        self.save()

    def save(self) -> None:
        state = _CursorState(self.committed, self.lost)
        tmp = self._path.with_suffix(".tmp")
        tmp.write_bytes(msgspec.json.encode(state))
        os.replace(tmp, self._path)


class Journal:
    """The append-only log of events between the stream and the sinks; see the module docstring.

    Appends come from the event loop (`append`, synchronous and quick: a write to the page
    cache); forcing them to the disk (`sync`) may run in a thread. `synced` tells, per symbol,
    the last trade id that a power cut cannot take back: the resume points saved in the database
    never go past it, so a start after a power cut back-fills what the journal lost.
    """

    def __init__(self, path: Path, options: JournalOptions, lock: IO[bytes]) -> None:
        self.path = path
        self.options = options
        self._lock_file = lock
        self._segments: list[_Segment] = []
        self._chunks: list[_Chunk] = []
        self._head = 0
        """Chunks before `_head` left the memory; the list is compacted now and then."""
        self._chunk_bytes = 0
        self._cursors: dict[str, Cursor] = {}
        self._file: IO[bytes] | None = None
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None
        self._io = threading.Lock()
        self._waiters: list[asyncio.Future[None]] = []
        self._unsynced: dict[str, int] = {}
        self._last_sync = time.monotonic()
        self.end = 0
        self.synced: dict[str, int] = {}
        self.appended_total = 0
        self.failed_total = 0
        self.dropped_total = 0
        """Trades the disk budget or a full disk took before every cursor had them."""

    # --- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path | str, options: JournalOptions | None = None) -> Journal:
        """Open (or create) the journal at `path`; `JournalLocked` if a process holds it."""
        path = Path(path)
        try:
            (path / "segments").mkdir(parents=True, exist_ok=True)
            (path / "cursors").mkdir(exist_ok=True)
            lock = (path / "LOCK").open("ab")
        except OSError as error:
            raise JournalError(f"cannot open the journal at {path}: {error}") from None
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise JournalLocked(
                f"the journal at {path} is held by another process; give each instance its "
                "own with --journal-dir"
            ) from None
        journal = cls(path, options or JournalOptions(), lock)
        try:
            journal._recover()
        except BaseException:
            journal.close()
            raise
        return journal

    def _recover(self) -> None:
        files = sorted(self.path.joinpath("segments").glob("*.arrow"))
        for index, file in enumerate(files):
            try:
                start = int(file.stem)
            except ValueError:
                raise JournalError(f"{file}: not a journal segment name") from None
            if self._segments and start != self._segments[-1].end:
                raise JournalError(
                    f"{file}: starts at {start}, but the segment before it ends at "
                    f"{self._segments[-1].end}"
                )
            segment = _Segment(start, file)
            torn = self._scan(segment, last=index == len(files) - 1)
            if torn:
                self._rewrite(segment)
            if segment.count == 0:
                file.unlink()
                continue
            self._segments.append(segment)
        self.end = self._segments[-1].end if self._segments else self._first_position()
        self.synced = self._positions_on_disk()

    def _first_position(self) -> int:
        """An empty journal goes on from the furthest any cursor got, so positions never repeat."""
        furthest = 0
        for file in self.path.joinpath("cursors").glob("*.json"):
            with contextlib.suppress(OSError, msgspec.DecodeError):
                furthest = max(
                    furthest, msgspec.json.decode(file.read_bytes(), type=_CursorState).position
                )
        return furthest

    def _scan(self, segment: _Segment, *, last: bool) -> bool:
        """Count the segment's rows; True when its tail is torn (allowed in the last only)."""
        try:
            source = pa.memory_map(str(segment.path))
        except OSError as error:
            raise JournalError(f"{segment.path}: {error}") from None
        with source:
            try:
                reader = pa.ipc.open_stream(source)
            except (pa.ArrowInvalid, OSError) as error:
                if last:
                    return True
                raise JournalError(f"{segment.path}: damaged journal segment ({error})") from None
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                except (pa.ArrowInvalid, OSError) as error:
                    if last:
                        return True
                    raise JournalError(
                        f"{segment.path}: damaged journal segment ({error})"
                    ) from None
                if segment.count == 0:
                    segment.first_appended = batch.column(4)[0].as_py()
                segment.count += batch.num_rows
        segment.bytes = segment.path.stat().st_size
        return False

    def _rewrite(self, segment: _Segment) -> None:
        """Keep the whole batches of a torn segment (the tail a crash cut short goes)."""
        log.warning(
            "%s: the last append was cut short; keeping the %d events before it",
            segment.path,
            segment.count,
        )
        good: list[pa.RecordBatch] = []
        with pa.memory_map(str(segment.path)) as source:
            with contextlib.suppress(pa.ArrowInvalid, OSError):
                reader = pa.ipc.open_stream(source)
                with contextlib.suppress(pa.ArrowInvalid, OSError, StopIteration):
                    while True:
                        good.append(reader.read_next_batch())
            tmp = segment.path.with_suffix(".tmp")
            with tmp.open("wb") as out, pa.ipc.new_stream(out, SCHEMA) as writer:
                for batch in good:
                    writer.write_batch(batch)
                out.flush()
                os.fsync(out.fileno())
        os.replace(tmp, segment.path)
        segment.count = sum(batch.num_rows for batch in good)
        segment.bytes = segment.path.stat().st_size

    def _positions_on_disk(self) -> dict[str, int]:
        """The last trade id per symbol in the journal as opened (all of it synced)."""
        positions: dict[str, int] = {}
        for segment in self._segments[-2:]:
            for batch in self._batches(segment):
                kinds = batch.column(0).to_pylist()
                for kind, symbol, last in zip(
                    kinds, batch.column(1).to_pylist(), batch.column(3).to_pylist(), strict=True
                ):
                    if kind == TRADE and last > positions.get(symbol, -1):
                        positions[symbol] = last
        return positions

    # --- cursors ---------------------------------------------------------------------------

    def cursor(self, name: str) -> Cursor:
        """The cursor called `name`, as committed by the last run (a new one starts at the end:
        a sink added to a service does not replay what the journal held before it)."""
        cursor = self._cursors.get(name)
        if cursor is not None:
            return cursor
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"not a cursor name: {name!r}")
        path = self.path / "cursors" / f"{name}.json"
        try:
            state = msgspec.json.decode(path.read_bytes(), type=_CursorState)
        except FileNotFoundError:
            state = _CursorState(self.end)
        except (OSError, msgspec.DecodeError) as error:
            raise JournalError(f"{path}: unreadable cursor ({error})") from None
        start = self.start
        if state.position < start:
            log.warning(
                "journal cursor %s stopped at %d, before the journal's start %d: what lies "
                "between is no longer in the journal",
                name,
                state.position,
                start,
            )
            state.position = start
        if state.position > self.end:
            state.position = self.end  # the journal lost its unsynced tail in a power cut
        cursor = self._cursors[name] = Cursor(self, name, state)
        cursor.save()
        return cursor

    def hold_back(self, positions: Mapping[str, int]) -> dict[str, int]:
        """Stream positions no further than what a power cut cannot take from the journal.

        A symbol with appended trades but none forced to disk yet is left out: its saved
        position stays where the last save put it.
        """
        held: dict[str, int] = {}
        for symbol, position in positions.items():
            if symbol in self._unsynced:
                synced = self.synced.get(symbol)
                if synced is not None:
                    held[symbol] = min(position, synced)
            else:
                held[symbol] = position
        return held

    @property
    def cursors(self) -> list[Cursor]:
        return list(self._cursors.values())

    @property
    def start(self) -> int:
        return self._segments[0].start if self._segments else self.end

    @property
    def size(self) -> int:
        """Bytes of every segment on disk."""
        return sum(segment.bytes for segment in self._segments)

    # --- appending -------------------------------------------------------------------------

    def append(self, events: Sequence[JournalEvent], payloads: Sequence[bytes]) -> int:
        """Write `events` (with their encoded documents) as one batch; returns the new end.

        `JournalFull` when the disk is full: the events are then recorded as lost for every
        cursor (so each sink announces or re-fetches them) and the journal goes on.
        """
        if not events:
            return self.end
        now = time.time()
        kinds: list[int] = []
        symbols: list[str] = []
        firsts: list[int] = []
        lasts: list[int] = []
        unsynced = self._unsynced
        for event in events:
            symbol = event.symbol
            symbols.append(symbol)
            if type(event) is TradeEvent:
                trade_id = event.trade_id
                kinds.append(TRADE)
                firsts.append(trade_id)
                lasts.append(trade_id)
                if trade_id > unsynced.get(symbol, -1):
                    unsynced[symbol] = trade_id
            else:
                assert isinstance(event, GapNotice)
                kinds.append(GAP)
                firsts.append(event.first_missing_id)
                lasts.append(event.last_missing_id)
        count = len(events)
        batch = pa.RecordBatch.from_arrays(
            [
                pa.array(kinds, pa.uint8()),
                pa.array(symbols, pa.string()),
                pa.array(firsts, pa.int64()),
                pa.array(lasts, pa.int64()),
                pa.array([now] * count, pa.float64()),
                pa.array(payloads, pa.binary()),
            ],
            schema=SCHEMA,
        )
        try:
            self._write(batch, now)
        except OSError as error:
            self._lose_everywhere(events)
            self.failed_total += count
            if error.errno == errno.ENOSPC:
                raise JournalFull(f"{self.path}: the disk is full ({error})") from None
            raise JournalError(f"{self.path}: cannot append ({error})") from None
        start = self.end
        self.end = start + count
        self.appended_total += count
        size = batch.nbytes + _DECODED_BYTES * count
        self._chunks.append(_Chunk(start, list(events), list(payloads), now, size))
        self._chunk_bytes += size
        self._forget_chunks()
        policy = self.options.fsync
        if policy is FsyncPolicy.ALWAYS:
            self.sync()
        elif policy is FsyncPolicy.NEVER:
            self.synced.update(unsynced)
            unsynced.clear()
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._enforce_budget()
        return self.end

    def record(self, events: Sequence[Event]) -> int:
        """Encode `events` once (`streamer.wire`) and append them: what pub/sub's tap calls.

        A `Dropped` notice belongs to one subscriber and is never journaled.
        """
        kept = [event for event in events if isinstance(event, TradeEvent | GapNotice)]
        return self.append(kept, encode_events(kept))

    def _write(self, batch: pa.RecordBatch, now: float) -> None:
        with self._io:
            segment = self._segments[-1] if self._segments and self._writer is not None else None
            if segment is None or segment.bytes >= self.options.segment_bytes:
                self._rotate(now)
                segment = self._segments[-1]
            assert self._writer is not None
            assert self._file is not None
            self._writer.write_batch(batch)
            self._file.flush()
            segment.count += batch.num_rows
            segment.bytes = self._file.tell()

    def _rotate(self, now: float) -> None:
        """Close the segment being written (forced to disk) and begin the next."""
        self._close_writer(sync=self.options.fsync is not FsyncPolicy.NEVER)
        path = self.path / "segments" / f"{self.end:020d}.arrow"
        file = path.open("wb")
        try:
            writer = pa.ipc.new_stream(file, SCHEMA)
        except BaseException:
            file.close()
            raise
        self._file, self._writer = file, writer
        self._segments.append(_Segment(self.end, path, 0, file.tell(), now))

    def _close_writer(self, *, sync: bool) -> None:
        writer, file = self._writer, self._file
        self._writer = self._file = None
        if writer is not None and file is not None:
            with contextlib.suppress(OSError, pa.ArrowException):
                writer.close()
                file.flush()
                if sync:
                    os.fsync(file.fileno())
            file.close()

    def sync(self) -> None:
        """Force what was appended to the disk; may run in a thread beside appends."""
        positions = dict(self._unsynced)
        with self._io:
            file = self._file
            if file is not None:
                with contextlib.suppress(OSError, ValueError):
                    os.fsync(file.fileno())
        for symbol, trade_id in positions.items():
            if trade_id > self.synced.get(symbol, -1):
                self.synced[symbol] = trade_id
            if self._unsynced.get(symbol) == trade_id:
                del self._unsynced[symbol]
        self._last_sync = time.monotonic()

    async def run_syncer(self) -> None:
        """Force appends to the disk every `fsync_interval` seconds, off the event loop."""
        interval = self.options.fsync_interval
        while True:
            await asyncio.sleep(interval)
            if self._unsynced:
                await asyncio.to_thread(self.sync)

    def _lose_everywhere(self, events: Sequence[JournalEvent]) -> None:
        ranges: dict[str, list[tuple[int, int]]] = {}
        for event in events:
            _merge(ranges, {event.symbol: [_event_range(event)]})
        trades = sum(1 for event in events if type(event) is TradeEvent)
        self.dropped_total += trades
        for cursor in self._cursors.values():
            cursor._lose(ranges, self.end)

    # --- reading ---------------------------------------------------------------------------

    async def wait_beyond(self, position: int) -> None:
        """Return once the journal ends after `position`."""
        if self.end > position:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter

    def _forget_chunks(self) -> None:
        """Keep the newest chunks within `memory_bytes` (always the last one)."""
        chunks = self._chunks
        while self._chunk_bytes > self.options.memory_bytes and self._head < len(chunks) - 1:
            self._chunk_bytes -= chunks[self._head].size
            self._head += 1
        if self._head > 1024 and self._head * 2 > len(chunks):
            del chunks[: self._head]
            self._head = 0

    def _chunk_index(self, position: int) -> int | None:
        """The index of the chunk in memory holding `position` (None: only on disk)."""
        chunks, head = self._chunks, self._head
        if head >= len(chunks) or position < chunks[head].start:
            return None
        last = len(chunks) - 1
        if position >= chunks[last].start:
            return last  # a cursor that keeps up reads the newest chunk
        return bisect.bisect_right(chunks, position, lo=head, key=_chunk_start) - 1

    def appended_at(self, position: int) -> float:
        """When the event at `position` was appended (its batch in memory, or its segment)."""
        index = self._chunk_index(position)
        if index is not None:
            return self._chunks[index].appended
        for segment in self._segments:
            if segment.start <= position < segment.end:
                return segment.first_appended
        return time.time()

    def slice(
        self, cursor: Cursor, start: int, limit: int
    ) -> tuple[list[JournalEvent], list[bytes]]:
        """Events `start..` (at most `limit`): from memory when there, else from the segments."""
        index = self._chunk_index(start)
        if index is None:
            return self._read_disk(cursor, start, limit)
        chunks = self._chunks
        events: list[JournalEvent] = []
        payloads: list[bytes] = []
        while index < len(chunks) and len(events) < limit:
            chunk = chunks[index]
            offset = start + len(events) - chunk.start
            end = offset + limit - len(events)
            events.extend(chunk.events[offset:end])
            payloads.extend(chunk.payloads[offset:end])
            index += 1
        return events, payloads

    def _batches(self, segment: _Segment) -> Iterator[pa.RecordBatch]:
        try:
            with pa.memory_map(str(segment.path)) as source:
                yield from pa.ipc.open_stream(source)
        except (pa.ArrowInvalid, OSError) as error:
            raise JournalError(f"{segment.path}: damaged journal segment ({error})") from None

    def _segment_of(self, position: int) -> _Segment | None:
        index = bisect.bisect_right(self._segments, position, key=_segment_start) - 1
        if index < 0 or position >= self._segments[index].end:
            return None
        return self._segments[index]

    def _read_disk(
        self, cursor: Cursor, start: int, limit: int
    ) -> tuple[list[JournalEvent], list[bytes]]:
        """Read on from the cursor's open segment reader (reopened only when it moved)."""
        payloads: list[bytes] = []
        position = start
        while len(payloads) < limit and self._chunk_index(position) is None:
            reader = cursor._reader
            if reader is None or not reader.position <= position < reader.segment.end:
                segment = self._segment_of(position)
                if segment is None:
                    break
                reader = _Reader(segment, self._batches(segment), segment.start)
            batch = reader.pending if reader.pending is not None else next(reader.batches, None)
            if batch is None:  # the rest of the segment is not mapped yet: read it again
                cursor._reader = None
                break
            reader.pending = batch
            cursor._reader = reader
            skip = position - reader.position
            take = min(batch.num_rows - skip, limit - len(payloads))
            if take > 0:
                payloads.extend(batch.column(5).slice(skip, take).to_pylist())
                position += take
            if skip + max(take, 0) >= batch.num_rows:
                reader.position += batch.num_rows
                reader.pending = None
        return (decode_events(payloads) if payloads else []), payloads

    # --- freeing space ---------------------------------------------------------------------

    def trim(self) -> None:
        """Delete the segments every cursor has committed past (never the one being written)."""
        if not self._cursors:
            return
        low = min(cursor.committed for cursor in self._cursors.values())
        while len(self._segments) > 1 and self._segments[0].end <= low:
            self._drop_first()

    def _enforce_budget(self) -> None:
        """Past the budget, the oldest segment goes even if a cursor still needs it: the
        cursor records exactly which trades it lost, to re-fetch or announce them."""
        while self.size > self.options.max_bytes and len(self._segments) > 1:
            segment = self._segments[0]
            behind = [c for c in self._cursors.values() if c.committed < segment.end]
            if behind:
                rows = list(self._batches(segment))
                for cursor in behind:
                    skip = max(0, cursor.committed - segment.start)
                    table = pa.Table.from_batches(rows, SCHEMA).slice(skip).to_batches()
                    ranges = _ranges_of(table)
                    trades = sum(batch.column(0).to_pylist().count(TRADE) for batch in table)
                    self.dropped_total += trades
                    log.warning(
                        "journal over its budget of %d bytes: sink %s loses %d trades it had "
                        "not sent (%s); it re-fetches them from the exchange",
                        self.options.max_bytes,
                        cursor.name,
                        trades,
                        ", ".join(f"{s} {r[0][0]}..{r[-1][1]}" for s, r in ranges.items()),
                    )
                    cursor._lose(ranges, segment.end)
            self._drop_first()

    def _drop_first(self) -> None:
        segment = self._segments.pop(0)
        with contextlib.suppress(FileNotFoundError):
            segment.path.unlink()

    # --- closing ---------------------------------------------------------------------------

    def close(self) -> None:
        """Force everything to the disk and release the lock."""
        with self._io:
            self._close_writer(sync=self.options.fsync is not FsyncPolicy.NEVER)
        self.synced.update(self._unsynced)
        self._unsynced.clear()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.cancel()
        self._waiters.clear()
        with contextlib.suppress(OSError):
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
        self._lock_file.close()

    def stats(self) -> JournalStats:
        return JournalStats(
            path=str(self.path),
            size=self.size,
            max_bytes=self.options.max_bytes,
            segments=len(self._segments),
            start=self.start,
            end=self.end,
            appended=self.appended_total,
            dropped=self.dropped_total,
            fsync=self.options.fsync,
        )


class JournalStats(msgspec.Struct, frozen=True):
    """The journal's size and counters, for health, metrics and the tree."""

    path: str
    size: int
    max_bytes: int
    segments: int
    start: int
    end: int
    appended: int
    dropped: int
    fsync: FsyncPolicy


def default_journal_dir(data_dir: Path, sqlite_file: Path | None, instance_id: str | None) -> Path:
    """Beside an SQLite database (`settings.db.journal`), else one per instance in `data_dir`."""
    if sqlite_file is not None:
        return sqlite_file.with_name(sqlite_file.name + ".journal")
    return data_dir / "journal" / (instance_id or "default")
