"""Running sinks: one supervised child per sink, each reading its own bounded subscription.

A sink module only makes a batch durable (`streamer.sinks.base.Sink`); everything else lives
here, once for every destination:

- Each runner subscribes to every topic with a bounded, drop-oldest queue of its own, so a slow
  or dead broker only ever fills that queue: the stream, in-process subscribers and the other
  sinks never wait for it.
- It takes whatever is queued (`get_batch`) and publishes it as one batch. `SinkUnavailable`
  means the same batch is sent again after a capped, doubling backoff, for as long as it takes;
  the sink drops what it already holds (keyed by symbol and trade id), so a re-send is harmless.
  Any other error gives the batch up.
- Losses are never silent. Overflow (`Dropped`) and given-up batches are counted, and because
  the runner remembers per symbol the last trade id it has accounted for, the next trade of a
  symbol that lost some becomes preceded by `GapNotice(symbol, last + 1, next - 1)`: consumers
  of the broker learn the exact range they will never get.
- The runner outlives restarts of its child: its subscription and the batch in flight stay, so
  a crash loses nothing. When the service stops, the child sends what is queued before it ends,
  within `FLUSH_SECONDS`.
- Per symbol it also remembers the last trade id the sink made durable; the service saves the
  lower of that and the stream's own position, so after a crash or a `kill -9` the next start
  back-fills from where the broker stopped, and the broker drops what it already had.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import msgspec
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from streamer.events import Dropped, Event, GapNotice, TradeEvent
from streamer.otp import ChildSpec, Started, Strategy, Supervisor
from streamer.sinks.base import Sink, SinkError, SinkEvent, SinkUnavailable
from streamer.stream.pubsub import Overflow, PubSub, Subscription

log = logging.getLogger(__name__)

FLUSH_SECONDS = 3.0
"""How long a stopping sink may spend sending what is queued (its child's shutdown is 5 s)."""


@dataclass(frozen=True, slots=True)
class RunnerOptions:
    """How a sink is fed: its queue, its batches and how patiently it retries."""

    queue: int = 100_000
    """Events the sink's subscription holds before it drops its oldest (counted, announced)."""
    batch: int = 5_000
    """Most events handed to the sink in one `publish`."""
    retry_base: float = 0.1
    retry_cap: float = 5.0
    """The backoff between attempts doubles from `retry_base` up to this many seconds."""

    def __post_init__(self) -> None:
        if self.queue < 1 or self.batch < 1:
            raise ValueError("queue and batch must be at least 1")
        if not 0 < self.retry_base <= self.retry_cap:
            raise ValueError("retry_base must be > 0 and at most retry_cap")


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
    published: int
    """Trades the destination confirmed (re-sends it dropped as duplicates included)."""
    gaps: int
    """Gap notices the destination confirmed (the stream's own and the sink's)."""
    lost: int
    """Trades this sink could not deliver and announced with a gap notice of its own."""
    dropped: int
    """Events its subscription dropped because the destination fell behind."""
    given_up: int
    """Batches abandoned after an error retrying could not fix."""
    retries: int
    duplicates: int
    queued: int
    last_error: str | None
    since: float
    """When the state last changed (seconds since the epoch)."""


@dataclass(slots=True)
class _Batch:
    """Events on their way to the sink, and each symbol's accounted position before them."""

    events: list[SinkEvent]
    before: dict[str, int | None] = field(default_factory=dict)


class GapTracker:
    """Per symbol, the last trade id accounted for: turns a jump in ids into a gap notice.

    Pure bookkeeping, no I/O: `prepare` turns what the subscription handed over into what the
    sink must publish, and `give_up` rewinds the symbols of a batch that never arrived, so the
    next trade of each of them announces the loss.
    """

    def __init__(self) -> None:
        self.accounted: dict[str, int] = {}
        self.lost = 0
        self.dropped = 0

    def prepare(self, events: Iterable[Event]) -> _Batch:
        batch = _Batch([])
        out = batch.events
        accounted = self.accounted
        for event in events:
            if isinstance(event, Dropped):
                self.dropped += event.count
                continue
            symbol = event.symbol
            if symbol not in batch.before:
                batch.before[symbol] = accounted.get(symbol)
            last = accounted.get(symbol)
            if isinstance(event, GapNotice):
                if last is None or event.last_missing_id > last:
                    accounted[symbol] = event.last_missing_id
                out.append(event)
                continue
            trade_id = event.trade_id
            if last is not None and trade_id > last + 1:
                out.append(GapNotice(symbol, last + 1, trade_id - 1))
                self.lost += trade_id - 1 - last
            if last is None or trade_id > last:
                accounted[symbol] = trade_id
            out.append(event)
        return batch

    def give_up(self, batch: _Batch) -> None:
        """The batch never reached the destination: the next trade of its symbols says so."""
        for symbol, before in batch.before.items():
            if before is None:
                # Nothing was accounted before it: the next trade cannot name where the loss
                # began, so remember the first lost id instead.
                first = _first_trade_id(batch.events, symbol)
                if first is None:
                    self.accounted.pop(symbol, None)
                else:
                    self.accounted[symbol] = first - 1
            else:
                self.accounted[symbol] = before

    def forget(self, symbol: str) -> None:
        self.accounted.pop(symbol, None)


def _first_trade_id(events: Sequence[SinkEvent], symbol: str) -> int | None:
    for event in events:
        if event.symbol == symbol:
            return event.trade_id if isinstance(event, TradeEvent) else event.first_missing_id
    return None


class SinkRunner:
    """Feeds one sink from its own subscription; its `child_spec` is the supervised child."""

    def __init__(self, sink: Sink, pubsub: PubSub, options: RunnerOptions | None = None) -> None:
        self.sink = sink
        self.options = options or RunnerOptions()
        self.subscription: Subscription = pubsub.subscribe(
            None, maxlen=self.options.queue, overflow=Overflow.DROP_OLDEST
        )
        self.tracker = GapTracker()
        self.durable: dict[str, int] = {}
        self.state = SinkState.STOPPED
        self.since = time.time()
        self.last_error: str | None = None
        self.published = 0
        self.gaps = 0
        self.given_up = 0
        self.retries = 0
        self._pending: _Batch | None = None
        self._open = False

    @property
    def name(self) -> str:
        return self.sink.name

    @property
    def healthy(self) -> bool:
        return self.state is SinkState.UP

    def child_spec(self) -> ChildSpec:
        return ChildSpec(id=self.name, start=self.run)

    def stats(self) -> SinkStats:
        sink = self.sink
        return SinkStats(
            name=self.name,
            state=self.state,
            healthy=self.healthy,
            published=self.published,
            gaps=self.gaps,
            lost=self.tracker.lost,
            dropped=self.tracker.dropped,
            given_up=self.given_up,
            retries=self.retries,
            duplicates=sink.duplicates if isinstance(sink, CountsDuplicates) else 0,
            queued=len(self.subscription),
            last_error=self.last_error,
            since=self.since,
        )

    def resume_from(self, symbol: str, last_id: int) -> None:
        """The destination is known to hold `symbol` up to `last_id` (the saved position)."""
        self.durable[symbol] = last_id
        self.tracker.accounted.setdefault(symbol, last_id)

    def forget(self, symbol: str) -> None:
        """The symbol was stopped by a user: its next start begins afresh, with no gap."""
        self.durable.pop(symbol, None)
        self.tracker.forget(symbol)

    def _set_state(self, state: SinkState, error: BaseException | None = None) -> None:
        if error is not None:
            self.last_error = str(error) or type(error).__name__
        if state is not self.state:
            self.state = state
            self.since = time.time()

    async def run(self, started: Started) -> None:
        """The child's body: started at once, so a destination that is down delays nothing."""
        self._set_state(SinkState.CONNECTING)
        started()
        try:
            await self._deliver(_Batch([]))  # open now, so an outage shows before any trade
            while True:
                if self._pending is None:
                    events = await self.subscription.get_batch(self.options.batch)
                    self._pending = self.tracker.prepare(events)
                await self._deliver(self._pending)
                self._pending = None
                reraise_cancellation()
        except asyncio.CancelledError:
            await self._flush()
            raise
        except BaseException:
            # A bug, not an outage: this batch is not tried again, and its loss is announced.
            if self._pending is not None:
                self._give_up(self._pending)
            raise
        finally:
            self._set_state(SinkState.STOPPED)
            self._open = False
            await self.sink.close()

    async def _deliver(self, batch: _Batch) -> None:
        """Publish `batch`, retrying while the destination is unavailable; give it up on a
        refusal that retrying cannot fix. A destination that cannot be opened is retried
        whatever the error, since nothing was sent yet and an operator may fix it."""
        delay = self.options.retry_base
        while True:
            try:
                if not self._open:
                    await self.sink.open()
                    self._open = True
                if batch.events:
                    await self.sink.publish(batch.events)
            except SinkError as error:
                reraise_cancellation()
                if self._open and not isinstance(error, SinkUnavailable):
                    log.error("sink %s refused %d events: %s", self.name, len(batch.events), error)
                    self.last_error = str(error)
                    self._give_up(batch)
                    return
                if self.state is not SinkState.RETRYING:
                    log.warning("sink %s unavailable: %s; retrying", self.name, error)
                self._set_state(SinkState.RETRYING, error)
                self.retries += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.options.retry_cap)
                continue
            if self.state is not SinkState.UP:
                log.info("sink %s is up", self.name)
            self._set_state(SinkState.UP)
            self._confirmed(batch.events)
            return

    def _confirmed(self, events: Sequence[SinkEvent]) -> None:
        durable = self.durable
        for event in events:
            if isinstance(event, TradeEvent):
                self.published += 1
                if event.trade_id > durable.get(event.symbol, -1):
                    durable[event.symbol] = event.trade_id
            else:
                self.gaps += 1
                if event.last_missing_id > durable.get(event.symbol, -1):
                    durable[event.symbol] = event.last_missing_id

    def _give_up(self, batch: _Batch) -> None:
        self.given_up += 1
        self.tracker.give_up(batch)
        self._pending = None

    async def _flush(self) -> None:
        """At shutdown: send the batch in flight and whatever is queued, if the sink is up."""
        if not self._open:
            return
        try:
            async with asyncio.timeout(FLUSH_SECONDS):
                while True:
                    if self._pending is None:
                        events = self.subscription.get_nowait_batch(self.options.batch)
                        if not events:
                            return
                        self._pending = self.tracker.prepare(events)
                    await self.sink.publish(self._pending.events)
                    self._confirmed(self._pending.events)
                    self._pending = None
        except (TimeoutError, SinkError) as error:
            log.warning(
                "sink %s: %d events not sent at stop (%s); the next start re-sends them",
                self.name,
                len(self.subscription),
                error or "timed out",
            )


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
        self, sinks: Sequence[tuple[Sink, RunnerOptions]], pubsub: PubSub, *, required: bool
    ) -> None:
        self.runners = [SinkRunner(sink, pubsub, options) for sink, options in sinks]
        names = [runner.name for runner in self.runners]
        if len(set(names)) != len(names):
            raise SinkError(f"the same sink is configured twice: {', '.join(names)}")
        self.required = required
        self.supervisor = Supervisor(
            [runner.child_spec() for runner in self.runners],
            strategy=Strategy.ONE_FOR_ONE,
            name="sinks",
        )

    def __iter__(self) -> Iterator[SinkRunner]:
        return iter(self.runners)

    def child_spec(self) -> ChildSpec:
        return dataclasses.replace(self.supervisor.child_spec("sinks"), describe=self.describe)

    def describe(self) -> dict[str, Any]:
        """The supervisor's view, each sink child carrying its connection state and counters."""
        tree = self.supervisor.describe()
        by_name = {runner.name: runner for runner in self.runners}
        for child in tree["children"]:
            runner = by_name.get(child["id"])
            if runner is not None:
                child["sink"] = msgspec.to_builtins(runner.stats())
        return tree

    def stats(self) -> list[SinkStats]:
        return [runner.stats() for runner in self.runners]

    @property
    def ready(self) -> bool:
        """Sinks count towards readiness only when the user asked for it."""
        return not self.required or all(runner.healthy for runner in self.runners)

    def resume_from(self, positions: Mapping[str, int]) -> None:
        for runner in self.runners:
            for symbol, last_id in positions.items():
                runner.resume_from(symbol, last_id)

    def forget(self, symbol: str) -> None:
        for runner in self.runners:
            runner.forget(symbol)

    def hold_back(self, positions: Mapping[str, int]) -> dict[str, int]:
        """The stream's positions, held back to what every sink has made durable.

        Saved as resume points, they make the next start back-fill (and re-send, which the
        brokers drop as duplicates) whatever a sink had not confirmed when the process died.
        """
        held = dict(positions)
        for runner in self.runners:
            for symbol, position in held.items():
                durable = runner.durable.get(symbol)
                if durable is not None and durable < position:
                    held[symbol] = durable
        return held


def metric_families(sinks: Sinks) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    """The sinks' samples for `/metrics`, read from their counters at scrape time."""
    counters = {
        "published": "Trades the sink's destination confirmed.",
        "gaps": "Gap notices the sink's destination confirmed.",
        "lost": "Trades the sink could not deliver, each announced in a gap notice.",
        "dropped": "Events the sink's queue dropped because its destination fell behind.",
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
    queued = GaugeMetricFamily(
        "streamer_sink_queued", "Events waiting for the sink.", labels=["sink"]
    )
    for stats in sinks.stats():
        for key, family in families.items():
            family.add_metric([stats.name], float(getattr(stats, key)))
        up.add_metric([stats.name], 1.0 if stats.healthy else 0.0)
        queued.add_metric([stats.name], float(stats.queued))
    yield from families.values()
    yield up
    yield queued
