"""Running sinks: one supervised child per sink, each reading the journal at its own cursor.

A sink module only makes a batch durable (`streamer.sinks.base.Sink`); everything else lives
here, once for every destination:

- Each runner reads the journal (`streamer.journal`) from its own committed cursor and hands
  what it reads to its sink as one batch, with the documents the journal encoded once for every
  sink. A slow or absent destination only makes its cursor lag: the stream, in-process
  subscribers and the other sinks never wait for it, and nothing is dropped until the journal's
  disk budget is spent.
- `SinkUnavailable` means the same batch is sent again after a capped, doubling backoff, for as
  long as it takes; the sink drops what it already holds (keyed by symbol and trade id), so a
  re-send is harmless. The cursor is committed only after the destination confirmed the batch,
  so a crash or a `kill -9` re-sends from there.
- A refusal retrying cannot fix gives the batch up and announces its trades, exact ids per
  symbol, in gap notices of the sink's own. Trades the disk budget took before the cursor read
  them are re-fetched from the exchange's history when there is one, and only what it no longer
  has is announced.
- `degraded` tells the truth about the last minute: a sink that lost trades, could not reach
  its destination, or lags further than `max_lag` seconds says so, with the reason.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import msgspec
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from streamer.errors import ExchangeError
from streamer.events import EARLIEST_S, LATEST_S, MILLISECONDS, GapNotice, TradeEvent
from streamer.journal import Cursor, Journal
from streamer.otp import ChildSpec, Started, Strategy, Supervisor
from streamer.sinks.base import Sink, SinkError, SinkEvent, SinkUnavailable
from streamer.stream.backfill import BackfillLimiter, to_event
from streamer.stream.market import PAGE, TradeHistory
from streamer.stream.validate import check
from streamer.wire import encode_events

log = logging.getLogger(__name__)

FLUSH_SECONDS = 3.0
"""How long a stopping sink may spend sending what it has not sent (its child's shutdown is
5 s); what is left stays in the journal for the next start."""
TROUBLE_SECONDS = 60.0
"""A loss or an outage keeps a sink degraded this long after it ended."""


@dataclass(frozen=True, slots=True)
class RunnerOptions:
    """How a sink is fed: its batches, how patiently it retries, when it counts as behind."""

    batch: int = 5_000
    """Most events handed to the sink in one `publish`."""
    retry_base: float = 0.1
    retry_cap: float = 5.0
    """The backoff between attempts doubles from `retry_base` up to this many seconds."""
    max_lag: float = 30.0
    """Seconds the oldest event not yet confirmed may wait before the sink is degraded."""
    max_refetch: int = 100_000
    """Most trades of one lost range re-fetched from the exchange; the older rest is announced."""

    def __post_init__(self) -> None:
        if self.batch < 1 or self.max_refetch < 0:
            raise ValueError("batch must be at least 1 and max_refetch at least 0")
        if not 0 < self.retry_base <= self.retry_cap:
            raise ValueError("retry_base must be > 0 and at most retry_cap")
        if not self.max_lag > 0:
            raise ValueError("max_lag must be a positive number of seconds")


class SinkState(StrEnum):
    """Where a sink's connection to its destination is."""

    CONNECTING = "connecting"
    """Opening the destination for the first time since the child started."""
    UP = "up"
    """The last open or publish succeeded."""
    RETRYING = "retrying"
    """The destination cannot be reached or did not confirm a batch; retrying with backoff."""
    STOPPED = "stopped"


@runtime_checkable
class CountsDuplicates(Protocol):
    """A sink that can tell how many events its destination refused as already held."""

    @property
    def duplicates(self) -> int: ...


class SinkStats(msgspec.Struct, frozen=True):
    """One sink's counters and state, for health, metrics and the tree."""

    name: str
    state: SinkState
    healthy: bool
    """Up, and not degraded."""
    degraded: str | None
    """Why the sink is not healthy (None when it is)."""
    published: int
    """Trades the destination confirmed (re-sends it dropped as duplicates included)."""
    gaps: int
    """Gap notices the destination confirmed (the stream's own and the sink's)."""
    lost: int
    """Trades this sink could not deliver and announced with a gap notice of its own."""
    refetched: int
    """Trades the journal's budget took that were fetched again from the exchange."""
    given_up: int
    """Batches abandoned after an error retrying could not fix."""
    retries: int
    duplicates: int
    lag: int
    """Events in the journal the destination has not confirmed."""
    lag_seconds: float
    last_error: str | None
    """The last error, until the sink is healthy again."""
    since: float
    """When the state last changed (seconds since the epoch)."""


def cursor_name(sink_name: str) -> str:
    """A file name for the sink's cursor: `nats://127.0.0.1:4222` -> `nats_127.0.0.1_4222`."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", sink_name).strip("_") or "sink"


def id_ranges(ids: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted trade ids as inclusive runs: `[1, 2, 3, 7]` -> `[(1, 3), (7, 7)]`."""
    runs: list[tuple[int, int]] = []
    for trade_id in sorted(ids):
        if runs and trade_id == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], trade_id)
        elif not runs or trade_id > runs[-1][1]:
            runs.append((trade_id, trade_id))
    return runs


class SinkRunner:
    """Feeds one sink from its journal cursor; its `child_spec` is the supervised child."""

    def __init__(
        self,
        sink: Sink,
        options: RunnerOptions | None = None,
        *,
        history: Callable[[], TradeHistory] | None = None,
        limiter: BackfillLimiter | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sink = sink
        self.options = options or RunnerOptions()
        self.cursor: Cursor | None = None
        self._history = history
        self._limiter = limiter
        self._clock = clock
        self.state = SinkState.STOPPED
        self.since = clock()
        self.last_error: str | None = None
        self.published = 0
        self.gaps = 0
        self.lost = 0
        self.refetched = 0
        self.given_up = 0
        self.retries = 0
        self.durable: dict[str, int] = {}
        """Per symbol, the last trade id the destination confirmed."""
        self._trouble_at: float | None = None
        self._open = False

    @property
    def name(self) -> str:
        return self.sink.name

    def attach(self, cursor: Cursor) -> None:
        self.cursor = cursor

    def child_spec(self) -> ChildSpec:
        return ChildSpec(id=self.name, start=self.run)

    def degraded(self) -> str | None:
        """Why the sink cannot be trusted right now, or None."""
        if self.state is SinkState.RETRYING:
            return f"cannot deliver: {self.last_error}"
        if self.state is not SinkState.UP:
            return f"{self.state}"
        if self._trouble_at is not None and self._clock() - self._trouble_at < TROUBLE_SECONDS:
            return f"lost trades or could not deliver in the last minute: {self.last_error}"
        cursor = self.cursor
        if cursor is not None:
            lag = cursor.lag_seconds(self._clock())
            if lag > self.options.max_lag:
                limit = self.options.max_lag
                return f"{cursor.lag} events behind ({lag:.0f} s, more than {limit:g} s)"
        return None

    def stats(self) -> SinkStats:
        sink = self.sink
        cursor = self.cursor
        degraded = self.degraded()
        return SinkStats(
            name=self.name,
            state=self.state,
            healthy=degraded is None,
            degraded=degraded,
            published=self.published,
            gaps=self.gaps,
            lost=self.lost,
            refetched=self.refetched,
            given_up=self.given_up,
            retries=self.retries,
            duplicates=sink.duplicates if isinstance(sink, CountsDuplicates) else 0,
            lag=cursor.lag if cursor is not None else 0,
            lag_seconds=cursor.lag_seconds(self._clock()) if cursor is not None else 0.0,
            last_error=self.last_error if degraded is not None else None,
            since=self.since,
        )

    def _set_state(self, state: SinkState, error: BaseException | str | None = None) -> None:
        if error is not None:
            self.last_error = str(error) or type(error).__name__
        if state is not self.state:
            self.state = state
            self.since = self._clock()

    def _trouble(self, reason: str) -> None:
        self.last_error = reason
        self._trouble_at = self._clock()

    async def run(self, started: Started) -> None:
        """The child's body: started at once, so a destination that is down delays nothing."""
        cursor = self.cursor
        if cursor is None:
            raise SinkError(f"sink {self.name} has no journal cursor")
        cursor.rewind()  # a restarted child re-sends what its last life did not confirm
        self._set_state(SinkState.CONNECTING)
        started()
        try:
            await self._deliver([], [])  # open now, so an outage shows before any trade
            while True:
                if cursor.lost:
                    await self._recover(cursor)
                batch = await cursor.read(self.options.batch)
                await self._deliver(batch.events, batch.payloads)
                cursor.commit(batch.end)
                reraise_cancellation()
        except asyncio.CancelledError:
            await self._flush(cursor)
            raise
        finally:
            self._set_state(SinkState.STOPPED)
            self._open = False
            await self.sink.close()

    async def _deliver(self, events: Sequence[SinkEvent], payloads: Sequence[bytes]) -> None:
        """Publish a batch, retrying while the destination is unavailable; announce it lost on
        a refusal retrying cannot fix. A destination that cannot be opened is retried whatever
        the error, since nothing was sent yet and an operator may fix it."""
        delay = self.options.retry_base
        while True:
            try:
                if not self._open:
                    await self.sink.open()
                    self._open = True
                if events:
                    await self.sink.publish(events, payloads)
            except SinkError as error:
                reraise_cancellation()
                if self._open and not isinstance(error, SinkUnavailable):
                    log.error("sink %s refused %d events: %s", self.name, len(events), error)
                    await self._give_up(events, str(error))
                    return
                if self.state is not SinkState.RETRYING:
                    log.warning("sink %s unavailable: %s; retrying", self.name, error)
                self._set_state(SinkState.RETRYING, error)
                self._trouble_at = self._clock()
                self.retries += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.options.retry_cap)
                continue
            if self.state is not SinkState.UP:
                log.info("sink %s is up", self.name)
            self._set_state(SinkState.UP)
            self._confirmed(events)
            return

    def _confirmed(self, events: Sequence[SinkEvent]) -> None:
        durable = self.durable
        trades = 0
        for event in events:
            if type(event) is TradeEvent:
                trades += 1
                if event.trade_id > durable.get(event.symbol, -1):
                    durable[event.symbol] = event.trade_id
        self.published += trades
        self.gaps += len(events) - trades

    async def _give_up(self, events: Sequence[SinkEvent], reason: str) -> None:
        """The batch never reaches the destination: say exactly which trades, once."""
        self.given_up += 1
        ids: dict[str, list[int]] = {}
        for event in events:
            if type(event) is TradeEvent:
                ids.setdefault(event.symbol, []).append(event.trade_id)
        notices = [
            GapNotice(symbol, first, last)
            for symbol, trade_ids in ids.items()
            for first, last in id_ranges(trade_ids)
        ]
        self.lost += sum(len(trade_ids) for trade_ids in ids.values())
        self._trouble(f"refused {len(events)} events: {reason}")
        if not notices:
            return
        try:
            await self.sink.publish(notices, encode_events(notices))
        except SinkError as error:
            log.error(
                "sink %s: the gap notices of that batch were refused too: %s", self.name, error
            )
        else:
            self.gaps += len(notices)

    async def _recover(self, cursor: Cursor) -> None:
        """Re-fetch what the journal's budget took from the exchange; announce the rest."""
        for symbol, ranges in list(cursor.lost.items()):
            for first, last in list(ranges):
                trades = await self._refetch(symbol, first, last)
                held = {trade.trade_id for trade in trades}
                missing = [
                    GapNotice(symbol, a, b) for a, b in _complement(first, last, sorted(held))
                ]
                events = _in_order(missing, trades)
                if missing:
                    count = sum(n.last_missing_id - n.first_missing_id + 1 for n in missing)
                    self.lost += count
                    self._trouble(f"{count} trades of {symbol} left the journal unsent")
                    log.warning(
                        "sink %s: %s trades %s are no longer to be had; announced",
                        self.name,
                        symbol,
                        ", ".join(f"{n.first_missing_id}..{n.last_missing_id}" for n in missing),
                    )
                for start in range(0, len(events), self.options.batch):
                    part = events[start : start + self.options.batch]
                    await self._deliver(part, encode_events(part))
                self.refetched += len(trades)
                cursor.settle(symbol, first, last)

    async def _refetch(self, symbol: str, first: int, last: int) -> list[TradeEvent]:
        """Trades `first..last` of `symbol` from the history (the newest `max_refetch`)."""
        if self._history is None or self.options.max_refetch == 0:
            return []
        first = max(first, last - self.options.max_refetch + 1)
        history = self._history()
        earliest, latest = EARLIEST_S * MILLISECONDS, LATEST_S * MILLISECONDS
        found: list[TradeEvent] = []
        next_id = first
        try:
            while next_id <= last:
                if self._limiter is not None:
                    await self._limiter.spend()
                page = await history.historical_trades(
                    symbol, next_id, min(PAGE, last - next_id + 1)
                )
                rows = sorted((t for t in page if next_id <= t.id <= last), key=lambda t: t.id)
                if not rows:
                    break
                for row in rows:
                    event = to_event(symbol, row)
                    if check(event, earliest, latest) is None:
                        found.append(event)
                next_id = rows[-1].id + 1
        except (ExchangeError, OSError, TimeoutError) as error:
            log.warning(
                "sink %s: could not re-fetch %s %d..%d: %s", self.name, symbol, next_id, last, error
            )
        return found

    async def _flush(self, cursor: Cursor) -> None:
        """At shutdown: send what the cursor has not, if the sink is up; the rest waits in the
        journal for the next start."""
        if not self._open:
            return
        try:
            async with asyncio.timeout(FLUSH_SECONDS):
                cursor.rewind()
                while True:
                    batch = cursor.read_nowait(self.options.batch)
                    if not batch.events:
                        return
                    await self.sink.publish(batch.events, batch.payloads)
                    self._confirmed(batch.events)
                    cursor.commit(batch.end)
        except (TimeoutError, SinkError) as error:
            log.warning(
                "sink %s: %d events not sent at stop (%s); the next start sends them",
                self.name,
                cursor.lag,
                error or "timed out",
            )


def _complement(first: int, last: int, held: Sequence[int]) -> list[tuple[int, int]]:
    """The ranges of `first..last` not in the sorted ids `held`."""
    out: list[tuple[int, int]] = []
    at = first
    for trade_id in held:
        if trade_id > at:
            out.append((at, trade_id - 1))
        at = max(at, trade_id + 1)
    if at <= last:
        out.append((at, last))
    return out


def _in_order(notices: Sequence[GapNotice], trades: Sequence[TradeEvent]) -> list[SinkEvent]:
    """Notices and trades of one symbol by trade id, as the stream would have carried them."""
    keyed: list[tuple[int, SinkEvent]] = [(n.first_missing_id, n) for n in notices]
    keyed += [(t.trade_id, t) for t in trades]
    keyed.sort(key=lambda pair: pair[0])
    return [event for _, event in keyed]


def reraise_cancellation() -> None:
    """Raise a cancellation that a client library swallowed or turned into its own error.

    nats-py, for one, drops a cancellation that arrives while it hands a message to its
    flusher and reports a cancelled wait for room in its publish window as
    `TooManyStalledMsgsError`; redis-py can drop one that arrives as it sends a command.
    Without this check a stopping child would go on waiting for its next batch until its
    supervisor abandoned it.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class Sinks:
    """Every configured sink of a service, under one `sinks` one_for_one supervisor."""

    def __init__(
        self,
        sinks: Sequence[tuple[Sink, RunnerOptions]],
        *,
        required: bool,
        history: Callable[[], TradeHistory] | None = None,
        limiter: BackfillLimiter | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.runners = [
            SinkRunner(sink, options, history=history, limiter=limiter, clock=clock)
            for sink, options in sinks
        ]
        names = [runner.name for runner in self.runners]
        if len(set(names)) != len(names):
            raise SinkError(f"the same sink is configured twice: {', '.join(names)}")
        cursors = [cursor_name(name) for name in names]
        if len(set(cursors)) != len(cursors):
            raise SinkError(f"two sinks would share a journal cursor: {', '.join(names)}")
        self.required = required
        self.journal: Journal | None = None
        self.supervisor = Supervisor(
            [runner.child_spec() for runner in self.runners],
            strategy=Strategy.ONE_FOR_ONE,
            name="sinks",
        )

    def __iter__(self) -> Iterator[SinkRunner]:
        return iter(self.runners)

    def __len__(self) -> int:
        return len(self.runners)

    def attach(self, journal: Journal) -> None:
        """Give every sink its cursor in `journal` (as committed by the last run)."""
        self.journal = journal
        for runner in self.runners:
            runner.attach(journal.cursor(cursor_name(runner.name)))

    def child_spec(self) -> ChildSpec:
        return dataclasses.replace(self.supervisor.child_spec("sinks"), describe=self.describe)

    def describe(self) -> dict[str, Any]:
        """The supervisor's view, each sink child carrying its connection state and counters."""
        tree = self.supervisor.describe()
        by_name = {runner.name: runner for runner in self.runners}
        children = []
        for child in tree["children"]:
            runner = by_name.get(child["id"])
            if runner is not None:
                child = {**child, "sink": msgspec.to_builtins(runner.stats())}
            children.append(child)
        described = {**tree, "children": children}
        if self.journal is not None:
            described["journal"] = msgspec.to_builtins(self.journal.stats())
        return described

    def stats(self) -> list[SinkStats]:
        return [runner.stats() for runner in self.runners]

    @property
    def ready(self) -> bool:
        """Sinks count towards readiness only when the user asked for it."""
        return not self.required or all(runner.degraded() is None for runner in self.runners)


def metric_families(sinks: Sinks) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    """The sinks' and the journal's samples for `/metrics`, read at scrape time."""
    counters = {
        "published": "Trades the sink's destination confirmed.",
        "gaps": "Gap notices the sink's destination confirmed.",
        "lost": "Trades the sink could not deliver, each announced in a gap notice.",
        "refetched": "Trades the journal's budget took, fetched again from the exchange.",
        "given_up": "Batches the sink abandoned after an error retrying could not fix.",
        "retries": "Attempts the sink repeated because its destination was unavailable.",
        "duplicates": "Events the sink's destination refused as already held.",
    }
    families = {
        key: CounterMetricFamily(f"streamer_sink_{key}", text, labels=["sink"])
        for key, text in counters.items()
    }
    up = GaugeMetricFamily(
        "streamer_sink_up", "1 when the sink's destination answers.", labels=["sink"]
    )
    healthy = GaugeMetricFamily(
        "streamer_sink_healthy",
        "1 when the sink is up, lost nothing in the last minute and keeps up.",
        labels=["sink"],
    )
    lag = GaugeMetricFamily(
        "streamer_sink_lag_events",
        "Events in the journal the sink's destination has not confirmed.",
        labels=["sink"],
    )
    lag_seconds = GaugeMetricFamily(
        "streamer_sink_lag_seconds",
        "Age of the oldest event the sink's destination has not confirmed.",
        labels=["sink"],
    )
    for stats in sinks.stats():
        for key, family in families.items():
            family.add_metric([stats.name], float(getattr(stats, key)))
        up.add_metric([stats.name], 1.0 if stats.state is SinkState.UP else 0.0)
        healthy.add_metric([stats.name], 1.0 if stats.healthy else 0.0)
        lag.add_metric([stats.name], float(stats.lag))
        lag_seconds.add_metric([stats.name], stats.lag_seconds)
    yield from families.values()
    yield up
    yield healthy
    yield lag
    yield lag_seconds
    journal = sinks.journal
    if journal is not None:
        held = journal.stats()
        size = GaugeMetricFamily("streamer_journal_bytes", "Bytes of the journal on disk.")
        size.add_metric([], float(held.size))
        budget = GaugeMetricFamily(
            "streamer_journal_max_bytes", "The journal's disk budget (--journal-max-bytes)."
        )
        budget.add_metric([], float(held.max_bytes))
        appended = CounterMetricFamily(
            "streamer_journal_appended", "Events appended to the journal."
        )
        appended.add_metric([], float(held.appended))
        dropped = CounterMetricFamily(
            "streamer_journal_dropped",
            "Trades the journal's budget or a full disk took before every sink had them.",
        )
        dropped.add_metric([], float(held.dropped))
        yield from (size, budget, appended, dropped)
