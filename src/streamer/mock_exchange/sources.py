"""Where a symbol's trades come from: a recorded tape played in a loop, or a seeded random walk.

Both are endless, gap-free sequences addressed by index (0, 1, 2, ...), cut into chunks so that a
chunk can be encoded once and written to many connections. Trade ids are `first_id + index`, so
a loop over a recording continues the ids (and the times) instead of repeating them.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from dataclasses import dataclass
from itertools import repeat
from operator import add
from typing import Protocol

from streamer.mock_exchange.data import Tape
from streamer.mock_exchange.encoding import trade_mid

CHUNK = 4096


@dataclass(frozen=True, slots=True)
class Trades:
    """Consecutive trades from index `start`, column by column, times in microseconds."""

    start: int
    first_id: int
    trade_time_us: list[int]
    event_time_us: list[int]
    price: list[bytes]
    qty: list[bytes]
    maker: list[bool]
    mids: list[bytes]

    def __len__(self) -> int:
        return len(self.price)

    @property
    def end(self) -> int:
        return self.start + len(self.price)


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
        self.period_us = duration + step
        self._per_pass = math.ceil(self._n / CHUNK)
        self._mids = list(map(trade_mid, tape.price, tape.qty))

    def chunk_of(self, index: int) -> int:
        loop, offset = divmod(index, self._n)
        return loop * self._per_pass + offset // CHUNK

    def chunk(self, number: int) -> Trades:
        loop, part = divmod(number, self._per_pass)
        lo = part * CHUNK
        hi = min(self._n, lo + CHUNK)
        tape = self._tape
        shift = loop * self.period_us
        trade_times = tape.trade_time_us[lo:hi].tolist()
        event_times = tape.event_time_us[lo:hi].tolist()
        if shift:
            trade_times = list(map(add, trade_times, repeat(shift, hi - lo)))
            event_times = list(map(add, event_times, repeat(shift, hi - lo)))
        start = loop * self._n + lo
        return Trades(
            start=start,
            first_id=self.first_id + start,
            trade_time_us=trade_times,
            event_time_us=event_times,
            price=tape.price[lo:hi],
            qty=tape.qty[lo:hi],
            maker=tape.maker[lo:hi],
            mids=self._mids[lo:hi],
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
        return index // CHUNK

    def chunk(self, number: int) -> Trades:
        while len(self._opens) <= number:
            self._opens.append(self._walk(len(self._opens) - 1)[-1])
        prices = self._walk(number)
        rng = random.Random(f"{self._seed}:{self.symbol}:{number}:q")
        start = number * CHUNK
        times = [self._start_us + int((start + k) * 1e6 / self._rate) for k in range(CHUNK)]
        price = [b"%.8f" % p for p in prices]
        qty = [b"%.8f" % rng.lognormvariate(0.0, 1.0) for _ in range(CHUNK)]
        return Trades(
            start=start,
            first_id=self.first_id + start,
            trade_time_us=times,
            event_time_us=times,
            price=price,
            qty=qty,
            maker=[rng.random() < 0.5 for _ in range(CHUNK)],
            mids=list(map(trade_mid, price, qty)),
        )

    def _walk(self, number: int) -> list[float]:
        rng = random.Random(f"{self._seed}:{self.symbol}:{number}:p")
        price = self._opens[number]
        prices = []
        for _ in range(CHUNK):
            price = max(1e-8, price * math.exp(rng.gauss(0.0, 0.0005)))
            prices.append(price)
        return prices

    def due(self, index: int) -> float:
        return index / self._rate

    def count_due(self, seconds: float) -> int:
        return math.floor(seconds * self._rate + 1e-9) + 1
