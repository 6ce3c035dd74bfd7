"""One symbol's market: which trades have happened by now, and the stream faults on top of them.

The market is shared by every connection and by the history endpoint, which is what makes the
mock behave like one exchange: a client that reconnects sees later ids, never the same trades
again, and the history endpoint serves exactly the trades the stream carried (or skipped).
Paced markets follow a clock (recorded time / speed), and their trades carry the wall-clock time
at which they happen (the mock's start plus recorded time / speed), so trade and event times agree
with `/api/v3/time` at every speed. A market without a speed publishes a trade as soon as the
fastest subscriber asks for it and keeps the recorded times: it replays history, not the present.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streamer.mock_exchange.encoding import (
    Encoded,
    LruCache,
    Template,
    encode_agg_trades,
    encode_trades,
    rest_agg_trades,
    rest_trades,
)
from streamer.mock_exchange.sources import Trades, TradeSource

TRADE = "trade"
AGG_TRADE = "aggTrade"


@dataclass
class StreamFaults:
    """Index ranges the stream leaves out (history keeps them) or sends twice."""

    skipped: list[range] = field(default_factory=list)
    doubled: list[range] = field(default_factory=list)

    def touches(self, lo: int, hi: int) -> bool:
        return any(r.start < hi and lo < r.stop for r in (*self.skipped, *self.doubled))

    def copies(self, index: int) -> int:
        if any(index in r for r in self.skipped):
            return 0
        return 2 if any(index in r for r in self.doubled) else 1


class Market:
    """The published trades of one symbol, by index; `head` is the next index to publish."""

    def __init__(
        self,
        source: TradeSource,
        *,
        speed: float | None,
        started: float,
        clock: Callable[[], float],
        cache: LruCache[Encoded],
        templates: LruCache[Template],
        start_us: int = 0,
    ) -> None:
        self.symbol = source.symbol
        self.source = source
        self.speed = speed
        self.started = started
        self.faults = StreamFaults()
        self._clock = clock
        self._cache = cache
        self._templates = templates
        self._published = 0
        self._chunks: dict[int, Trades] = {}
        self._start_us = start_us

    @property
    def paced(self) -> bool:
        return self.speed is not None

    def head(self) -> int:
        """How many trades have happened: paced by the clock, or as far as a reader has gone."""
        if self.speed is None:
            return self._published
        return self.source.count_due((self._clock() - self.started) * self.speed)

    def publish(self, upto: int) -> None:
        """An unpaced market has now happened up to `upto` (a reader asked for those trades)."""
        self._published = max(self._published, upto)

    def due_at(self, index: int) -> float:
        """The clock time at which trade `index` happens (paced markets only)."""
        assert self.speed is not None
        return self.started + self.source.due(index) / self.speed

    def id_of(self, index: int) -> int:
        return self.source.first_id + index

    def index_of(self, trade_id: int) -> int:
        return trade_id - self.source.first_id

    def trades(self, index: int) -> Trades:
        """The chunk holding trade `index` (the last two used are kept)."""
        number = self.source.chunk_of(index)
        chunk = self._chunks.get(number)
        if chunk is None:
            chunk = self._timed(self.source.chunk(number))
            if len(self._chunks) >= 2:
                self._chunks.pop(next(iter(self._chunks)))
            self._chunks[number] = chunk
        return chunk

    def _timed(self, trades: Trades) -> Trades:
        """`trades` with their times moved onto the wall clock at this market's speed."""
        speed = self.speed
        if speed is None:
            return trades
        origin_us, start_us = self.source.origin_us, self._start_us

        def moved(micro: bool, values: tuple[int, ...]) -> tuple[int, ...]:
            unit = 1 if micro else 1000
            origin, start = origin_us // unit, start_us // unit
            return tuple(start + int((value - origin) / speed) for value in values)

        made: dict[bool, tuple[int, ...]] = {}

        def numbers(micro: bool) -> tuple[int, ...]:
            if micro not in made:
                flat = list(trades.numbers(micro))
                flat[0::3] = moved(micro, tuple(flat[0::3]))
                flat[2::3] = moved(micro, tuple(flat[2::3]))
                made[micro] = tuple(flat)
            return made[micro]

        def bounds(micro: bool) -> tuple[int, int]:
            low, high = moved(micro, trades.bounds(micro))
            return low, high

        return Trades(
            start=trades.start,
            first_id=trades.first_id,
            count=len(trades),
            part=trades.part,
            statics=lambda: trades.statics,
            numbers=numbers,
            bounds=bounds,
        )

    def encoded(self, index: int, stream: str | None, *, micro: bool, kind: str = TRADE) -> Encoded:
        """The encoded chunk holding trade `index`, shared by every connection that wants it."""
        number = self.source.chunk_of(index)
        key = (self.symbol, number, stream, micro, kind)
        item = self._cache.get(key)
        if item is None:
            trades = self.trades(index)
            if kind == AGG_TRADE:
                item = encode_agg_trades(trades, self.symbol, stream, micro=micro)
            else:
                item = encode_trades(
                    trades, self.symbol, stream, micro=micro, templates=self._templates
                )
            self._cache.put(key, item)
        return item

    def frames(
        self, lo: int, hi: int, stream: str | None, *, micro: bool, kind: str = TRADE
    ) -> tuple[bytes, int]:
        """Frames for trades from `lo` up to at most `hi` within one chunk, and where they stop."""
        encoded = self.encoded(lo, stream, micro=micro, kind=kind)
        hi = min(hi, encoded.end)
        if not self.faults.touches(lo, hi):
            return encoded.span(lo, hi), hi
        parts = [encoded.one(i) * self.faults.copies(i) for i in range(lo, hi)]
        return b"".join(parts), hi

    def history(
        self, first: int, limit: int, *, micro: bool, kind: str = TRADE
    ) -> list[dict[str, Any]]:
        """Up to `limit` published trades (or aggregates) from index `first` in REST shape."""
        shape = rest_agg_trades if kind == AGG_TRADE else rest_trades
        rows: list[dict[str, Any]] = []
        index, end = max(0, first), min(self.head(), max(0, first) + limit)
        while index < end:
            chunk = self.trades(index)
            stop = min(end, chunk.end)
            rows.extend(shape(chunk, index, stop, micro=micro))
            index = stop
        return rows

    def skip(self, count: int) -> range:
        """The next `count` trades will be missing from every stream (the history keeps them)."""
        head = self.head()
        span = range(head, head + count)
        self.faults.skipped.append(span)
        return span

    def duplicate(self, count: int) -> range:
        """The next `count` trades will be sent twice on every stream."""
        head = self.head()
        span = range(head, head + count)
        self.faults.doubled.append(span)
        return span
