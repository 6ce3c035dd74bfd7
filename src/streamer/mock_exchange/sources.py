"""Where a symbol's trades come from: a recorded tape played in a loop, or a seeded random walk.

Both are endless, gap-free sequences addressed by index (0, 1, 2, ...), cut into chunks so that a
chunk can be encoded once and written to many connections. Trade ids are `first_id + index`, so
a loop over a recording continues the ids (and the times) instead of repeating them.
"""

from __future__ import annotations

import math
import random
from array import array
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from itertools import repeat
from operator import add
from typing import Protocol

from streamer.mock_exchange.data import Tape
from streamer.mock_exchange.encoding import trade_mid

CHUNK = 4096  # trades per chunk of a recording: large, so a loop is few big writes
WALK_CHUNK = 64  # trades per chunk of a walk: small, as 1,695 walks may be open at once


@dataclass(frozen=True, slots=True)
class Times:
    """A chunk's event and trade times in one unit (ms or µs), with their overall bounds."""

    event: list[int]
    trade: list[int]
    low: int
    high: int


class Trades:
    """Consecutive trades from index `start`, column by column; times are made per unit on demand.

    `mids` is the payload text between a trade's id and its trade time. `part` names the trades'
    place in a recording (the same on every loop), so that their frame template can be reused.
    """

    __slots__ = (
        "_make_times",
        "_times",
        "first_id",
        "maker",
        "mids",
        "part",
        "price",
        "qty",
        "start",
    )

    def __init__(
        self,
        *,
        start: int,
        first_id: int,
        price: list[bytes],
        qty: list[bytes],
        maker: list[bool],
        mids: list[bytes],
        make_times: Callable[[bool], Times],
        part: int | None = None,
    ) -> None:
        self.start = start
        self.part = part
        self.first_id = first_id
        self.price = price
        self.qty = qty
        self.maker = maker
        self.mids = mids
        self._make_times = make_times
        self._times: dict[bool, Times] = {}

    def __len__(self) -> int:
        return len(self.price)

    @property
    def end(self) -> int:
        return self.start + len(self.price)

    def times(self, micro: bool) -> Times:
        found = self._times.get(micro)
        if found is None:
            found = self._times[micro] = self._make_times(micro)
        return found


class TradeSource(Protocol):
    """An endless trade sequence; `due` and `count_due` are in seconds of recorded time."""

    symbol: str
    first_id: int

    def chunk_of(self, index: int) -> int: ...

    def chunk(self, number: int) -> Trades: ...

    def due(self, index: int) -> float: ...

    def count_due(self, seconds: float) -> int: ...


class ReplaySource:
    """A recorded tape, looped: pass k shifts ids by k x its length and times by k x its period."""

    def __init__(self, tape: Tape) -> None:
        self.symbol = tape.symbol
        self.first_id = tape.first_id
        self._tape = tape
        self._n = len(tape)
        times = tape.trade_time_us
        duration = times[-1] - times[0]
        step = max(1000, duration // (self._n - 1)) if self._n > 1 else 1000
        self.period_us = -(-(duration + step) // 1000) * 1000
        self._per_pass = math.ceil(self._n / CHUNK)
        self._mids = list(map(trade_mid, tape.price, tape.qty))
        self._columns = {
            True: (tape.event_time_us, tape.trade_time_us),
            False: (
                array("q", (t // 1000 for t in tape.event_time_us)),
                array("q", (t // 1000 for t in tape.trade_time_us)),
            ),
        }
        every = (*tape.event_time_us, *tape.trade_time_us)
        self._bounds = (min(every), max(every))

    def chunk_of(self, index: int) -> int:
        loop, offset = divmod(index, self._n)
        return loop * self._per_pass + offset // CHUNK

    def chunk(self, number: int) -> Trades:
        loop, part = divmod(number, self._per_pass)
        lo = part * CHUNK
        hi = min(self._n, lo + CHUNK)
        tape = self._tape
        start = loop * self._n + lo
        return Trades(
            start=start,
            first_id=self.first_id + start,
            price=tape.price[lo:hi],
            qty=tape.qty[lo:hi],
            maker=tape.maker[lo:hi],
            mids=self._mids[lo:hi],
            make_times=lambda micro: self._times(micro, loop, lo, hi),
            part=part,
        )

    def _times(self, micro: bool, loop: int, lo: int, hi: int) -> Times:
        shift = loop * self.period_us
        low, high = self._bounds[0] + shift, self._bounds[1] + shift
        if not micro:
            shift, low, high = shift // 1000, low // 1000, high // 1000
        events, trades = self._columns[micro]
        if not shift:
            return Times(events[lo:hi].tolist(), trades[lo:hi].tolist(), low, high)
        count = hi - lo
        return Times(
            list(map(add, events[lo:hi], repeat(shift, count))),
            list(map(add, trades[lo:hi], repeat(shift, count))),
            low,
            high,
        )

    def due(self, index: int) -> float:
        loop, offset = divmod(index, self._n)
        times = self._tape.trade_time_us
        return (times[offset] - times[0] + loop * self.period_us) / 1e6

    def count_due(self, seconds: float) -> int:
        loop, rest = divmod(int(seconds * 1e6), self.period_us)
        times = self._tape.trade_time_us
        return loop * self._n + bisect_right(times, times[0] + rest)


class WalkSource:
    """Synthetic trades for a symbol without data: a seeded random walk at `rate` trades/s.

    Chunk k is drawn from its own generator seeded by (seed, symbol, k) and starts at the last
    price of chunk k-1, so any chunk can be rebuilt identically for the history endpoint.
    """

    def __init__(self, symbol: str, *, seed: int, rate: float, start_us: int) -> None:
        self.symbol = symbol
        self.first_id = 1
        self._seed = seed
        self._rate = rate
        self._start_us = start_us
        self._opens = [10 ** random.Random(f"{seed}:{symbol}").uniform(-2.0, 3.0)]

    def chunk_of(self, index: int) -> int:
        return index // WALK_CHUNK

    def chunk(self, number: int) -> Trades:
        while len(self._opens) <= number:
            self._opens.append(self._walk(len(self._opens) - 1)[-1])
        prices = self._walk(number)
        rng = random.Random(f"{self._seed}:{self.symbol}:{number}:q")
        start = number * WALK_CHUNK
        times = [self._start_us + int((start + k) * 1e6 / self._rate) for k in range(WALK_CHUNK)]
        price = [b"%.8f" % p for p in prices]
        qty = [b"%.8f" % rng.lognormvariate(0.0, 1.0) for _ in range(WALK_CHUNK)]
        return Trades(
            start=start,
            first_id=self.first_id + start,
            price=price,
            qty=qty,
            maker=[rng.random() < 0.5 for _ in range(WALK_CHUNK)],
            mids=list(map(trade_mid, price, qty)),
            make_times=lambda micro: _walk_times(times, micro),
        )

    def _walk(self, number: int) -> list[float]:
        rng = random.Random(f"{self._seed}:{self.symbol}:{number}:p")
        price = self._opens[number]
        prices = []
        for _ in range(WALK_CHUNK):
            price = max(1e-8, price * math.exp(rng.gauss(0.0, 0.0005)))
            prices.append(price)
        return prices

    def due(self, index: int) -> float:
        return index / self._rate

    def count_due(self, seconds: float) -> int:
        return math.floor(seconds * self._rate + 1e-9) + 1


def _walk_times(times_us: list[int], micro: bool) -> Times:
    times = times_us if micro else [t // 1000 for t in times_us]
    return Times(times, times, times[0], times[-1])
