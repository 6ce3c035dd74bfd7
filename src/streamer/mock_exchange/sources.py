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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from itertools import chain, cycle
from operator import add
from typing import Protocol

from streamer.mock_exchange.data import Tape
from streamer.mock_exchange.encoding import trade_mid

CHUNK = 4096  # trades per chunk of a recording: large, so a loop is few big writes
WALK_CHUNK = 64  # trades per chunk of a walk: small, as 1,695 walks may be open at once


@dataclass(frozen=True, slots=True)
class Statics:
    """The parts of trades that never change from loop to loop.

    `mids` is the payload text between a trade's id and its trade time (price and quantity).
    """

    price: list[bytes]
    qty: list[bytes]
    maker: list[bool]
    mids: list[bytes]


@dataclass(frozen=True, slots=True)
class Times:
    """Event and trade times in one unit (ms or µs)."""

    event: list[int]
    trade: list[int]


class Trades:
    """A view of consecutive trades from index `start`; its columns are made when first used.

    `numbers(micro)` is (event time, id, trade time) for each trade, flattened: all that changes
    from loop to loop, and all a cached frame template needs. `part` names the trades' place in a
    recording (the same on every loop) so that their template can be reused; None if unique.
    """

    def __init__(
        self,
        *,
        start: int,
        first_id: int,
        count: int,
        part: int | None,
        statics: Callable[[], Statics],
        numbers: Callable[[bool], tuple[int, ...]],
        bounds: Callable[[bool], tuple[int, int]],
    ) -> None:
        self.start = start
        self.first_id = first_id
        self.part = part
        self._count = count
        self._statics = statics
        self.numbers = numbers
        self.bounds = bounds

    def __len__(self) -> int:
        return self._count

    @property
    def end(self) -> int:
        return self.start + self._count

    @cached_property
    def statics(self) -> Statics:
        return self._statics()

    def times(self, micro: bool) -> Times:
        numbers = self.numbers(micro)
        return Times(list(numbers[0::3]), list(numbers[2::3]))


class TradeSource(Protocol):
    """An endless trade sequence; `due` and `count_due` are in seconds of recorded time.

    `origin_us` is the recorded time (µs) of due time 0, the first trade's.
    """

    symbol: str
    first_id: int
    origin_us: int

    def chunk_of(self, index: int) -> int: ...

    def chunk(self, number: int) -> Trades: ...

    def due(self, index: int) -> float: ...

    def count_due(self, seconds: float) -> int: ...


class ReplaySource:
    """A recorded tape, looped: pass k shifts ids by k x its length and times by k x its period."""

    def __init__(self, tape: Tape) -> None:
        self.symbol = tape.symbol
        self.first_id = tape.first_id
        self.origin_us = tape.trade_time_us[0]
        self._tape = tape
        self._n = len(tape)
        times = tape.trade_time_us
        duration = times[-1] - times[0]
        step = max(1000, duration // (self._n - 1)) if self._n > 1 else 1000
        self.period_us = -(-(duration + step) // 1000) * 1000
        self._per_pass = math.ceil(self._n / CHUNK)
        self._mids = list(map(trade_mid, tape.price, tape.qty))
        ids = range(tape.first_id, tape.first_id + self._n)
        self._numbers = {
            True: _interleave(tape.event_time_us, ids, tape.trade_time_us),
            False: _interleave(
                (t // 1000 for t in tape.event_time_us),
                ids,
                (t // 1000 for t in tape.trade_time_us),
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
        start = loop * self._n + lo
        return Trades(
            start=start,
            first_id=self.first_id + start,
            count=hi - lo,
            part=part,
            statics=lambda: self._statics(lo, hi),
            numbers=lambda micro: self._numbers_of(micro, loop, lo, hi),
            bounds=lambda micro: self._bounds_of(micro, loop),
        )

    def _statics(self, lo: int, hi: int) -> Statics:
        tape = self._tape
        return Statics(tape.price[lo:hi], tape.qty[lo:hi], tape.maker[lo:hi], self._mids[lo:hi])

    def _numbers_of(self, micro: bool, loop: int, lo: int, hi: int) -> tuple[int, ...]:
        window = self._numbers[micro][3 * lo : 3 * hi]
        if not loop:
            return tuple(window)
        shift = loop * self.period_us if micro else loop * self.period_us // 1000
        return tuple(map(add, window, cycle((shift, loop * self._n, shift))))

    def _bounds_of(self, micro: bool, loop: int) -> tuple[int, int]:
        low, high = (b + loop * self.period_us for b in self._bounds)
        return (low, high) if micro else (low // 1000, high // 1000)

    def due(self, index: int) -> float:
        loop, offset = divmod(index, self._n)
        times = self._tape.trade_time_us
        return (times[offset] - times[0] + loop * self.period_us) / 1e6

    def count_due(self, seconds: float) -> int:
        loop, rest = divmod(int(seconds * 1e6), self.period_us)
        times = self._tape.trade_time_us
        return loop * self._n + bisect_right(times, times[0] + rest)


def _interleave(*columns: Iterable[int]) -> array[int]:
    """One flat array of the columns' values, row by row."""
    return array("q", chain.from_iterable(zip(*columns, strict=True)))


class WalkSource:
    """Synthetic trades for a symbol without data: a seeded random walk at `rate` trades/s.

    Chunk k is drawn from its own generator seeded by (seed, symbol, k) and starts at the last
    price of chunk k-1, so any chunk can be rebuilt identically for the history endpoint.
    """

    def __init__(self, symbol: str, *, seed: int, rate: float, start_us: int) -> None:
        self.symbol = symbol
        self.first_id = 1
        self.origin_us = start_us
        self._seed = seed
        self._rate = rate
        self._start_us = start_us
        self._opens = [10 ** random.Random(f"{seed}:{symbol}").uniform(-2.0, 3.0)]

    def chunk_of(self, index: int) -> int:
        return index // WALK_CHUNK

    def chunk(self, number: int) -> Trades:
        while len(self._opens) <= number:
            self._opens.append(self._walk(len(self._opens) - 1)[-1])
        start = number * WALK_CHUNK
        times = [self._start_us + int((start + k) * 1e6 / self._rate) for k in range(WALK_CHUNK)]
        ids = range(self.first_id + start, self.first_id + start + WALK_CHUNK)
        flat = {
            True: tuple(_interleave(times, ids, times)),
            False: tuple(_interleave((t // 1000 for t in times), ids, (t // 1000 for t in times))),
        }
        bounds = {True: (times[0], times[-1]), False: (times[0] // 1000, times[-1] // 1000)}
        return Trades(
            start=start,
            first_id=self.first_id + start,
            count=WALK_CHUNK,
            part=None,
            statics=lambda: self._statics(number),
            numbers=flat.__getitem__,
            bounds=bounds.__getitem__,
        )

    def _statics(self, number: int) -> Statics:
        prices = [b"%.8f" % p for p in self._walk(number)]
        rng = random.Random(f"{self._seed}:{self.symbol}:{number}:q")
        qty = [b"%.8f" % rng.lognormvariate(0.0, 1.0) for _ in range(WALK_CHUNK)]
        maker = [rng.random() < 0.5 for _ in range(WALK_CHUNK)]
        return Statics(prices, qty, maker, list(map(trade_mid, prices, qty)))

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
