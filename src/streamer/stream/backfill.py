"""Filling a symbol's gap in trade ids from the exchange's trade history.

Trade ids of a symbol are consecutive, so a jump means trades were lost on the way (a reconnect,
a dropped frame). They are fetched page by page from the REST trade history and published in
order, marked as back-filled; whatever cannot be fetched, and every row that fails
`streamer.stream.validate`, is announced as a `GapNotice` and counted as lost, so a subscriber
always knows exactly what it did not get.

When a connection carrying hundreds of symbols drops, hundreds of gaps open at once; they share
one `BackfillLimiter`, so the requests that fill them stay within the exchange's REST weight
limit instead of earning a 429 (then a 418 ban) that would lose every gap. A gap also has a
deadline: its symbol's live trades wait behind it, so past the deadline the unfilled part is
announced lost and the live trades flow again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, nullcontext
from decimal import Decimal

from streamer.errors import ExchangeError, HistoryUnavailable
from streamer.events import MILLISECONDS, TradeEvent
from streamer.stream.channel import SymbolChannel
from streamer.stream.market import PAGE, HistoricalTradeLike, TradeHistory
from streamer.stream.pacing import Clock, WeightWindow
from streamer.stream.validate import check

log = logging.getLogger(__name__)


async def _page(
    history: TradeHistory, symbol: str, from_id: int, size: int
) -> Sequence[HistoricalTradeLike]:
    """A page of the history from `from_id` on; from a host without `historicalTrades`, the
    latest 1,000 trades instead (what is older than those is then announced lost)."""
    try:
        return await history.historical_trades(symbol, from_id, size)
    except HistoryUnavailable:
        return await history.recent_trades(symbol, PAGE)


class BackfillLimiter:
    """The share of REST weight every back-fill of a hub shares: a few gaps at a time, a weight
    per minute.

    Each page request spends its published weight in a sliding one-minute window and waits when
    the window is full, so back-fills never take the whole of the hub's `RestBudget` (which
    follows the exchange's own count) and probes always find room.
    """

    def __init__(
        self, concurrency: int, weight_per_minute: int, clock: Clock, *, page_weight: int
    ) -> None:
        if weight_per_minute < page_weight:
            raise ValueError(
                f"weight_per_minute must be at least one page's weight ({page_weight}), "
                f"got {weight_per_minute}"
            )
        self.page_weight = page_weight
        self._slots = asyncio.Semaphore(concurrency)
        self._window = WeightWindow(weight_per_minute, 60.0)
        self._lock = asyncio.Lock()
        self._clock = clock
        self.waits = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the concurrent back-fill places for the whole of one gap."""
        async with self._slots:
            yield

    async def spend(self, weight: int | None = None) -> None:
        """Wait until `weight` (one page's by default) fits in the last minute's budget, then
        spend it."""
        weight = self.page_weight if weight is None else weight
        async with self._lock:
            while (wait := self._window.delay(self._clock(), weight)) > 0:
                self.waits += 1
                await asyncio.sleep(wait)
            self._window.record(self._clock(), weight)


def to_event(symbol: str, trade: HistoricalTradeLike) -> TradeEvent:
    """A history trade as the stream would have carried it, marked back-filled."""
    return TradeEvent(
        event_type="trade",
        event_time=trade.time,
        symbol=symbol,
        trade_id=trade.id,
        price=Decimal(trade.price),
        quantity=Decimal(trade.qty),
        trade_time=trade.time,
        buyer_market_maker=trade.is_buyer_maker,
        backfilled=True,
    )


async def fill_gap(
    channel: SymbolChannel,
    history: TradeHistory,
    max_trades: int,
    *,
    limiter: BackfillLimiter | None = None,
    deadline: float | None = None,
) -> None:
    """Publish the trades of `channel.gap` in order, or announce what could not be had.

    A gap larger than `max_trades` (a long outage) is filled only for its newest `max_trades`
    trades; the older part is announced as lost rather than replayed for minutes. Waiting for
    the `limiter` counts against the `deadline`: what is not filled by then is announced lost.
    """
    if channel.gap is None:
        return
    first, last = channel.gap
    symbol = channel.symbol
    if last - first + 1 > max_trades:
        channel.report_lost(first, last - max_trades)
        first = last - max_trades + 1
    next_id = first
    timer = asyncio.timeout(deadline)
    try:
        async with timer, limiter.slot() if limiter is not None else nullcontext():
            while next_id <= last:
                if limiter is not None:
                    await limiter.spend()
                size = min(PAGE, last - next_id + 1)
                page = await _page(history, symbol, next_id, size)
                trades = [t for t in page if next_id <= t.id <= last]
                if not trades:
                    raise LookupError(f"the trade history has nothing from id {next_id}")
                earliest, latest = channel.rule.time_bounds(time.time(), MILLISECONDS)
                for trade in sorted(trades, key=lambda t: t.id):
                    if trade.id > next_id:
                        channel.report_lost(next_id, trade.id - 1)
                    event = to_event(symbol, trade)
                    rejected = check(event, earliest, latest)
                    if rejected is None:
                        channel.publish_backfilled(event)
                    else:
                        channel.reject(rejected, f"history row {trade.id}: {trade}")
                        channel.report_lost(trade.id, trade.id)
                    next_id = trade.id + 1
                channel.flush()
    except (ExchangeError, LookupError, OSError, TimeoutError) as exc:
        if timer.expired():
            channel.gaps_expired += 1
            reason = f"not filled within {deadline:g}s"
        else:
            reason = str(exc)
        log.warning(
            "%s: trades %d..%d could not be back-filled (%s); reported as lost",
            symbol,
            next_id,
            last,
            reason,
        )
        channel.report_lost(next_id, last)
        channel.gap_done(filled=False)
        return
    log.info("%s: back-filled trades %d..%d", symbol, first, last)
    channel.gap_done(filled=True)
