"""Filling a symbol's gap in trade ids from the exchange's trade history.

Trade ids of a symbol are consecutive, so a jump means trades were lost on the way (a reconnect,
a dropped frame). They are fetched page by page from the REST trade history and published in
order, marked as back-filled; whatever cannot be fetched is announced as a `GapNotice` and
counted as lost, so a subscriber always knows exactly what it did not get.

A gap has a deadline: its symbol's live trades wait behind it, so past the deadline the unfilled
part is announced lost and the live trades flow again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from decimal import Decimal
from typing import Protocol

from streamer.binance.channel import SymbolChannel
from streamer.binance.events import TradeEvent
from streamer.binance.rest import RestError

log = logging.getLogger(__name__)

PAGE = 1000


class HistoricalTradeLike(Protocol):
    """One trade of the REST trade history (`GET /api/v3/historicalTrades`)."""

    @property
    def id(self) -> int: ...
    @property
    def price(self) -> Decimal: ...
    @property
    def qty(self) -> Decimal: ...
    @property
    def time(self) -> int: ...
    @property
    def is_buyer_maker(self) -> bool: ...


class TradeHistory(Protocol):
    """Where missing trades come from (the REST client)."""

    async def historical_trades(
        self, symbol: str, from_id: int, limit: int = PAGE
    ) -> Sequence[HistoricalTradeLike]: ...


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
    deadline: float | None = None,
) -> None:
    """Publish the trades of `channel.gap` in order, or announce what could not be had.

    A gap larger than `max_trades` (a long outage) is filled only for its newest `max_trades`
    trades; the older part is announced as lost rather than replayed for minutes. What is not
    filled by the `deadline` (seconds) is announced lost.
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
        async with timer:
            while next_id <= last:
                size = min(PAGE, last - next_id + 1)
                page = await history.historical_trades(symbol, next_id, size)
                trades = [t for t in page if next_id <= t.id <= last]
                if not trades:
                    raise LookupError(f"the trade history has nothing from id {next_id}")
                for trade in sorted(trades, key=lambda t: t.id):
                    if trade.id > next_id:
                        channel.report_lost(next_id, trade.id - 1)
                    channel.publish_backfilled(to_event(symbol, trade))
                    next_id = trade.id + 1
                channel.flush()
    except (RestError, LookupError, OSError, TimeoutError) as exc:
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
