"""In-process publish/subscribe of trade events on `TRADE_EVENTS:<SYMBOL>` topics.

Publishing never blocks and never waits for a subscriber: each subscription owns a bounded queue
with an explicit overflow policy, so a slow consumer loses its own oldest (or newest) events,
counted and announced to it by a `Dropped` event, while the stream and every other subscriber
carry on. A waiting consumer is woken at
most once per burst: the first event after it went to sleep resolves its future, the rest of the
burst only lands in the queue, and the consumer takes the whole burst in one go.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum
from types import TracebackType

from streamer.errors import StreamerError
from streamer.events import Dropped, Event
from streamer.symbols import normalize_symbol

TOPIC_PREFIX = "TRADE_EVENTS:"
DEFAULT_MAXLEN = 100_000


def topic(symbol: str) -> str:
    """The topic of a symbol's trades: `topic(" ethusdt ") == "TRADE_EVENTS:ETHUSDT"`.

    Raises `InvalidSymbol` for a name that cannot be a symbol.
    """
    return TOPIC_PREFIX + normalize_symbol(symbol)


class Overflow(StrEnum):
    """What a full subscription does with a new event."""

    DROP_OLDEST = "drop_oldest"
    DROP_NEWEST = "drop_newest"


class SubscriptionClosed(StreamerError):
    """The subscription was closed; no more events will come."""


class Subscription:
    """A bounded queue of events from some topics (or all), read by one consumer.

    Read it with `async for event in sub`, or in batches with `await sub.get_batch()` (the fast
    way: one wake-up, many events). `dropped` counts the events lost to overflow; the consumer
    also gets a `Dropped(count)` before the next events it reads after an overflow, one per
    overflow burst (every loss between two reads adds up into one notice).
    """

    def __init__(
        self,
        pubsub: PubSub,
        topics: frozenset[str] | None,
        maxlen: int,
        overflow: Overflow,
    ) -> None:
        if maxlen < 1:
            raise ValueError(f"maxlen must be at least 1, got {maxlen}")
        self.topics = topics
        self.maxlen = maxlen
        self.overflow = overflow
        self.dropped = 0
        self.received = 0
        self._unannounced = 0
        self._pubsub = pubsub
        self._queue: deque[Event] = deque(maxlen=maxlen)
        self._drop_newest = overflow is Overflow.DROP_NEWEST
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._queue)

    def _push_batch(self, events: Sequence[Event]) -> None:
        queue = self._queue
        count = len(events)
        self.received += count
        room = self.maxlen - len(queue)
        if count > room:
            lost = count - room
            self.dropped += lost
            self._unannounced += lost
            if self._drop_newest:
                events = events[:room]
        queue.extend(events)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def _wait(self) -> None:
        while not self._queue:
            if self._closed:
                raise SubscriptionClosed
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                self._waiter = None

    async def get(self) -> Event:
        """The next event, waiting for one; raises `SubscriptionClosed` once closed."""
        await self._wait()
        if self._unannounced:
            return self._announce()
        return self._queue.popleft()

    def _announce(self) -> Dropped:
        notice = Dropped(self._unannounced)
        self._unannounced = 0
        return notice

    async def get_batch(self, max_items: int | None = None) -> list[Event]:
        """Every queued event (at most `max_items`), waiting for at least one.

        Returns an empty list once the subscription is closed.
        """
        try:
            await self._wait()
        except SubscriptionClosed:
            return []
        return self.get_nowait_batch(max_items)

    def get_nowait_batch(self, max_items: int | None = None) -> list[Event]:
        """Whatever is queued right now (at most `max_items`), without waiting."""
        if self._unannounced:
            notice = self._announce()
            rest = None if max_items is None else max_items - 1
            return [notice, *self.get_nowait_batch(rest)]
        queue = self._queue
        if max_items is None or max_items >= len(queue):
            batch = list(queue)
            queue.clear()
            return batch
        return [queue.popleft() for _ in range(max_items)]

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self.get()
        except SubscriptionClosed:
            raise StopAsyncIteration from None

    def close(self) -> None:
        """Stop receiving, discard what is queued, and wake a waiting consumer to see the end."""
        if self._closed:
            return
        self._closed = True
        self._queue.clear()
        self._unannounced = 0
        self._pubsub._remove(self)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def stats(self) -> dict[str, object]:
        """Plain data for status views and metrics."""
        return {
            "topics": sorted(self.topics) if self.topics is not None else None,
            "queued": len(self._queue),
            "maxlen": self.maxlen,
            "overflow": str(self.overflow),
            "received": self.received,
            "dropped": self.dropped,
            "closed": self._closed,
        }


class Route:
    """The subscriptions of one topic, kept up to date by `PubSub`; hold it to publish fast.

    A publisher that keeps its `Route` skips the topic lookup, and `publish_batch` hands a
    whole burst to each subscriber in one step (one queue extend, at most one wake-up).
    """

    __slots__ = ("name", "subscriptions", "tap")

    def __init__(self, name: str, subscriptions: tuple[Subscription, ...], tap: Tap) -> None:
        self.name = name
        self.subscriptions = subscriptions
        self.tap = tap

    def publish(self, event: Event) -> int:
        """Hand one event to every subscription of the topic; returns how many got it."""
        subs = self.subscriptions
        for sub in subs:
            sub._push_batch((event,))
        if self.tap.taps:
            self.tap.add((event,))
        return len(subs)

    def publish_batch(self, events: Sequence[Event]) -> None:
        """Hand several events, in order, to every subscription of the topic."""
        for sub in self.subscriptions:
            sub._push_batch(events)
        if self.tap.taps:
            self.tap.add(events)


OnBatch = Callable[[list[Event]], object]


class Tap:
    """Everything published in one turn of the event loop, handed over as one batch.

    What the journal reads: unlike a subscription it has no queue to overflow, and one batch per
    loop turn (every socket read of the turn, every symbol) keeps its cost per batch, not per
    event. A callback runs synchronously after the publishers of the turn, so it must be quick
    and must not raise.
    """

    def __init__(self) -> None:
        self.taps: list[OnBatch] = []
        self._pending: list[Event] = []
        self._scheduled = False

    def add(self, events: Sequence[Event]) -> None:
        self._pending.extend(events)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Hand what is pending to every callback now (also what a stop does last)."""
        self._scheduled = False
        events, self._pending = self._pending, []
        if events:
            for on_batch in self.taps:
                on_batch(events)


class PubSub:
    """Topic-based fan-out to subscriptions; `publish` is synchronous and never waits.

    Each topic has a `Route` listing its subscriptions (its own plus the subscribe-to-all
    ones), rebuilt only when subscriptions change, so publishing costs one push per reader.
    """

    def __init__(self) -> None:
        self._by_topic: dict[str, set[Subscription]] = {}
        self._everything: set[Subscription] = set()
        self._routes: dict[str, Route] = {}
        self._dropped_by_closed = 0
        self._tap = Tap()

    @property
    def dropped(self) -> int:
        """Events dropped by every subscription there has been, closed ones included, so that
        the count only ever grows (a Prometheus counter must not go down)."""
        return self._dropped_by_closed + sum(sub.dropped for sub in self.subscriptions())

    def subscribe(
        self,
        topics: str | Iterable[str] | None = None,
        *,
        maxlen: int = DEFAULT_MAXLEN,
        overflow: Overflow = Overflow.DROP_OLDEST,
    ) -> Subscription:
        """A new subscription to one topic, several, or every topic (`None`)."""
        wanted: frozenset[str] | None
        if topics is None:
            wanted = None
        elif isinstance(topics, str):
            wanted = frozenset((topics,))
        else:
            wanted = frozenset(topics)
        sub = Subscription(self, wanted, maxlen, overflow)
        if wanted is None:
            self._everything.add(sub)
        else:
            for name in wanted:
                self._by_topic.setdefault(name, set()).add(sub)
        self._refresh(wanted)
        return sub

    def _remove(self, sub: Subscription) -> None:
        self._dropped_by_closed += sub.dropped
        if sub.topics is None:
            self._everything.discard(sub)
        else:
            for name in sub.topics:
                subs = self._by_topic.get(name)
                if subs is not None:
                    subs.discard(sub)
                    if not subs:
                        del self._by_topic[name]
        self._refresh(sub.topics)

    def _subscriptions_of(self, name: str) -> tuple[Subscription, ...]:
        return tuple(self._by_topic.get(name, ())) + tuple(self._everything)

    def _refresh(self, names: frozenset[str] | None) -> None:
        targets = self._routes.keys() if names is None else names & self._routes.keys()
        for name in targets:
            self._routes[name].subscriptions = self._subscriptions_of(name)

    def route(self, name: str) -> Route:
        """The live route of topic `name` (created on first use, then kept up to date)."""
        route = self._routes.get(name)
        if route is None:
            route = self._routes[name] = Route(name, self._subscriptions_of(name), self._tap)
        return route

    def tap(self, on_batch: OnBatch) -> None:
        """Have `on_batch` called with everything published, once per loop turn, in order."""
        self._tap.taps.append(on_batch)

    def untap(self, on_batch: OnBatch) -> None:
        """Stop calling `on_batch`, after handing it what is pending."""
        self._tap.flush()
        self._tap.taps.remove(on_batch)

    def publish(self, name: str, event: Event) -> int:
        """Hand `event` to every subscription of topic `name`; returns how many got it."""
        return self.route(name).publish(event)

    def publish_many(self, name: str, events: Sequence[Event]) -> None:
        """Hand several events of one topic, in order, to every subscription of it."""
        self.route(name).publish_batch(events)

    def subscriptions(self) -> list[Subscription]:
        """Every open subscription (for status views and metrics)."""
        subs = set(self._everything)
        for group in self._by_topic.values():
            subs |= group
        return list(subs)
