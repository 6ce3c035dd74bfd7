"""Tests for streamer.stream.backfill with a scripted trade history."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal

from streamer.binance.rest import RestError
from streamer.errors import HistoryUnavailable
from streamer.events import Event, GapNotice, TradeEvent
from streamer.stream.backfill import BackfillLimiter, fill_gap
from streamer.stream.channel import SymbolChannel
from streamer.stream.pubsub import PubSub, Subscription, topic
from tests.polling import eventually


@dataclass(frozen=True)
class Historical:
    id: int
    price: Decimal = Decimal("2.5")
    qty: Decimal = Decimal("3")
    time: int = 1_700_000_000_099
    is_buyer_maker: bool = True


class History:
    """Serves ids from `available`, at most `page` per call, or fails when told to."""

    def __init__(self, available: set[int], page: int = 1000, fail: bool = False) -> None:
        self.available = available
        self.page = page
        self.fail = fail
        self.calls: list[tuple[int, int]] = []

    async def historical_trades(
        self, symbol: str, from_id: int, limit: int = 1000
    ) -> list[Historical]:
        self.calls.append((from_id, limit))
        if self.fail:
            raise RestError("exchange unreachable")
        found = sorted(i for i in self.available if i >= from_id)
        return [Historical(i) for i in found[: min(limit, self.page)]]

    async def recent_trades(self, symbol: str, limit: int = 1000) -> list[Historical]:
        self.calls.append((-1, limit))
        return [Historical(i) for i in sorted(self.available)[-limit:]]


def live(trade_id: int) -> TradeEvent:
    at = 1_700_000_000_000
    return TradeEvent("trade", at, "ETHUSDT", trade_id, Decimal("1"), Decimal("1"), at, False)


def channel_with_gap(first_live: int, gap_start: int) -> tuple[SymbolChannel, Subscription]:
    pubsub = PubSub()
    sub = pubsub.subscribe(topic("ETHUSDT"))
    channel = SymbolChannel("ETHUSDT", pubsub.route(topic("ETHUSDT")), [])
    channel.on_trade(live(gap_start - 1))
    channel.on_trade(live(first_live))
    assert channel.settle()
    channel.flush()
    sub.get_nowait_batch()
    return channel, sub


def summary(events: list[Event]) -> list[object]:
    result: list[object] = []
    for e in events:
        if isinstance(e, TradeEvent):
            result.append((e.trade_id, e.backfilled))
        elif isinstance(e, GapNotice):
            result.append(("gap", e.first_missing_id, e.last_missing_id))
        else:
            raise AssertionError(f"unexpected {e!r}")
    return result


async def test_gap_is_filled_in_pages_and_marked_backfilled() -> None:
    """A 2,500-trade gap is fetched page by page and published in order before the live trade."""
    channel, sub = channel_with_gap(first_live=2601, gap_start=101)
    history = History(set(range(101, 2601)), page=1000)
    await fill_gap(channel, history, max_trades=100_000)
    events = sub.get_nowait_batch()
    assert [e.trade_id for e in events if isinstance(e, TradeEvent)] == list(range(101, 2602))
    assert all(e.backfilled for e in events[:-1] if isinstance(e, TradeEvent))
    assert [c[0] for c in history.calls] == [101, 1101, 2101]
    assert channel.gaps_filled == 1
    first = events[0]
    assert isinstance(first, TradeEvent)
    assert (first.price, first.quantity, first.buyer_market_maker) == (
        Decimal("2.5"),
        Decimal("3"),
        True,
    )


async def test_failed_fetch_announces_the_gap() -> None:
    """When the history cannot be reached the whole gap is announced lost, then live resumes."""
    channel, sub = channel_with_gap(first_live=10, gap_start=5)
    await fill_gap(channel, History(set(), fail=True), max_trades=100)
    assert summary(sub.get_nowait_batch()) == [("gap", 5, 9), (10, False)]
    assert channel.gaps_lost == 1


async def test_ids_missing_from_history_are_announced_between_filled_ones() -> None:
    """Ids the history itself lacks become a gap notice in their place; the rest is filled."""
    channel, sub = channel_with_gap(first_live=10, gap_start=5)
    await fill_gap(channel, History({5, 8, 9}), max_trades=100)
    assert summary(sub.get_nowait_batch()) == [
        (5, True),
        ("gap", 6, 7),
        (8, True),
        (9, True),
        (10, False),
    ]


async def test_history_rows_failing_validation_are_announced_not_published() -> None:
    """A REST row with a NaN price or an impossible time is counted and announced as lost."""

    class Poisoned(History):
        async def historical_trades(
            self, symbol: str, from_id: int, limit: int = 1000
        ) -> list[Historical]:
            rows = await super().historical_trades(symbol, from_id, limit)
            bad = {6: Historical(6, price=Decimal("NaN")), 8: Historical(8, time=3 * 10**17)}
            return [bad.get(row.id, row) for row in rows]

    channel, sub = channel_with_gap(first_live=10, gap_start=5)
    await fill_gap(channel, Poisoned({5, 6, 7, 8, 9}), max_trades=100)
    assert summary(sub.get_nowait_batch()) == [
        (5, True),
        ("gap", 6, 6),
        (7, True),
        ("gap", 8, 8),
        (9, True),
        (10, False),
    ]
    assert channel.rejected == {"price": 1, "time_range": 1}


async def test_a_host_without_historical_trades_fills_recent_gaps_from_the_last_1000() -> None:
    """When `historicalTrades` is not served, the latest 1,000 trades fill what they cover and
    the older part of the gap is announced lost."""

    class NoHistory(History):
        async def historical_trades(
            self, symbol: str, from_id: int, limit: int = 1000
        ) -> list[Historical]:
            raise HistoryUnavailable("data-api.binance.vision does not serve it", status=404)

    history = NoHistory(set(range(1, 2_101)))
    channel, sub = channel_with_gap(first_live=2_101, gap_start=5)
    await fill_gap(channel, history, max_trades=5_000)
    events = summary(sub.get_nowait_batch())
    assert events[0] == ("gap", 5, 1_100)
    assert events[1:] == [(i, True) for i in range(1_101, 2_101)] + [(2_101, False)]
    assert history.calls == [(-1, 1000)]


async def test_oversized_gap_only_fills_its_newest_part() -> None:
    """A gap beyond max_trades announces its older part lost and fills the newest max_trades."""
    channel, sub = channel_with_gap(first_live=101, gap_start=1)
    await fill_gap(channel, History(set(range(1, 101))), max_trades=10)
    events = sub.get_nowait_batch()
    assert isinstance(events[0], GapNotice)
    assert (events[0].first_missing_id, events[0].last_missing_id) == (1, 90)
    assert [e.trade_id for e in events[1:] if isinstance(e, TradeEvent)] == list(range(91, 102))


class GatedHistory(History):
    """A history whose answers wait for `gate`, recording how many requests wait at once."""

    def __init__(self, available: set[int]) -> None:
        super().__init__(available)
        self.gate = asyncio.Event()
        self.waiting = 0
        self.most = 0

    async def historical_trades(
        self, symbol: str, from_id: int, limit: int = 1000
    ) -> list[Historical]:
        self.waiting += 1
        self.most = max(self.most, self.waiting)
        await self.gate.wait()
        self.waiting -= 1
        return await super().historical_trades(symbol, from_id, limit)


async def test_the_limiter_lets_only_a_few_gaps_fill_at_once() -> None:
    """Ten gaps sharing a limiter of two have at most two requests out, and all get filled."""
    history = GatedHistory(set(range(1, 100)))
    limiter = BackfillLimiter(2, 6000, lambda: 0.0, page_weight=25)
    channels = [channel_with_gap(first_live=50, gap_start=40)[0] for _ in range(10)]
    fills = [asyncio.create_task(fill_gap(c, history, 100, limiter=limiter)) for c in channels]
    await eventually(lambda: history.waiting == 2)
    for _ in range(10):
        await asyncio.sleep(0)
    assert history.waiting == 2
    history.gate.set()
    await asyncio.gather(*fills)
    assert history.most == 2
    assert [c.gaps_filled for c in channels] == [1] * 10


async def test_a_gap_past_its_deadline_is_announced_and_the_live_trades_flow() -> None:
    """A fill that outlives its deadline announces the rest lost, counts it, releases the held."""
    channel, sub = channel_with_gap(first_live=10, gap_start=5)
    history = GatedHistory({5, 6, 7, 8, 9})
    await fill_gap(channel, history, 100, deadline=0.05)
    assert summary(sub.get_nowait_batch()) == [("gap", 5, 9), (10, False)]
    assert (channel.gaps_lost, channel.gaps_expired) == (1, 1)
