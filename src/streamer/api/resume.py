"""Resuming `/ws/trades` after a reconnect: `?after=ETHUSDT:123,BTCUSDT:456`.

A client that lost its socket says, per symbol, the last trade id it saw. The service subscribes
first, then reads how far each symbol has been delivered, and fills the difference from the
exchange's trade history (the same REST budget the streams' own back-fills share), marked
`backfilled`; what is too old or cannot be had is one `GapNotice`. The live events that follow
skip every id already sent, so the client sees each trade once, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

from streamer.errors import ExchangeError, StreamerError
from streamer.events import Event, GapNotice, TradeEvent
from streamer.stream.backfill import to_event
from streamer.stream.market import PAGE
from streamer.symbols import normalize_symbol

if TYPE_CHECKING:
    from streamer.api.view import ServiceView


READY_WAIT = 10.0
"""Seconds a resuming client waits for a starting service's saved positions."""


class InvalidResume(StreamerError, ValueError):
    """An `after` parameter that is not `SYMBOL:TRADE_ID,...`."""


def parse_after(raw: str | None) -> dict[str, int]:
    """`"ethusdt:123, BTCUSDT:456"` -> `{"ETHUSDT": 123, "BTCUSDT": 456}`."""
    positions: dict[str, int] = {}
    for part in (raw or "").split(","):
        if not part.strip():
            continue
        symbol, _, number = part.rpartition(":")
        if not symbol or not number.strip().isdigit():
            raise InvalidResume(f"invalid after={part.strip()!r}: expected SYMBOL:TRADE_ID")
        positions[normalize_symbol(symbol)] = int(number)
    return positions


async def catch_up(service: ServiceView, after: dict[str, int]) -> list[Event]:
    """The trades each symbol delivered after the client's position, up to now, in order.

    At most `max_backfill` trades per symbol are replayed; the older part, or whatever the
    history cannot give, is announced by a `GapNotice`.
    """
    hub = service.hub
    events: list[Event] = []
    if after:
        # Positions saved by the previous run reach the hub just before the database is
        # first reached; a client reconnecting to a service that is still starting waits for
        # them, one reconnecting during a later outage does not.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(READY_WAIT):
                await service.database_reached.wait()
    reached = hub.positions()
    for symbol, last_seen in after.items():
        # A position kept for a worker that has not started again counts as well: its next
        # trades begin after it, so what lies before it can only come from the history.
        delivered = reached.get(symbol)
        if delivered is None or delivered <= last_seen:
            continue
        first = max(last_seen + 1, delivered - hub.config.max_backfill + 1)
        if first > last_seen + 1:
            events.append(GapNotice(symbol, last_seen + 1, first - 1))
        events.extend(await _history(service, symbol, first, delivered))
    return events


async def _history(service: ServiceView, symbol: str, first: int, last: int) -> list[Event]:
    hub = service.hub
    events: list[Event] = []
    next_id = first
    try:
        while next_id <= last:
            await hub.backfills.spend()
            page = await hub.history.historical_trades(
                symbol, next_id, min(PAGE, last - next_id + 1)
            )
            trades = sorted((t for t in page if next_id <= t.id <= last), key=lambda t: t.id)
            if not trades:
                break
            for trade in trades:
                if trade.id > next_id:
                    events.append(GapNotice(symbol, next_id, trade.id - 1))
                events.append(to_event(symbol, trade))
                next_id = trade.id + 1
    except (ExchangeError, OSError):
        pass
    if next_id <= last:
        events.append(GapNotice(symbol, next_id, last))
    return events


class SentFilter:
    """Drops live trades a resumed client already got from the catch-up."""

    def __init__(self, after: dict[str, int], caught_up: Iterable[Event]) -> None:
        self._sent = dict(after)
        for event in caught_up:
            if isinstance(event, TradeEvent | GapNotice):
                last = event.trade_id if isinstance(event, TradeEvent) else event.last_missing_id
                self._sent[event.symbol] = max(last, self._sent.get(event.symbol, last))

    def fresh(self, event: Event) -> bool:
        if not isinstance(event, TradeEvent):
            return True
        return event.trade_id > self._sent.get(event.symbol, -1)
