"""`GET /ws/live`: the status page's one live feed, deltas of every symbol once a tick.

A page that polled `/api/settings` for 1,695 rows every second would move megabytes a minute and
still show a stall late. Here one `LiveBoard` per service keeps what the page needs: every
setting's live state, its last price (read from the pub/sub like any other subscriber), a short
price and trade-rate history, and the times at which gaps were filled or lost. Once a tick it
sends every connected page only the fields that changed; a page asks for the history of the few
symbols it draws. A page that cannot keep up loses ticks, never the service's time: it gets one
fresh snapshot instead of the backlog.

The feed is read-only and unauthenticated like `GET /api/settings`, but a websocket is not
protected by CORS, so a handshake from a foreign `Origin` is refused (see `api.security`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from array import array
from bisect import bisect_left
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

import msgspec
from fastapi import WebSocket, WebSocketDisconnect

from streamer.api.security import is_foreign_origin
from streamer.db import DatabaseError
from streamer.events import TradeEvent
from streamer.stream.pubsub import Overflow, Subscription

if TYPE_CHECKING:
    from streamer.api.models import SymbolState
    from streamer.api.view import ServiceView

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
"""How often pages get deltas: a person reads a price at most this often."""
HISTORY_POINTS = 300
"""Points kept per symbol (five minutes at one a second): the chart's span and the longest
change window."""
CHANGE_WINDOWS = {"change_1m": 60.0, "change_5m": 300.0}
GAP_EVENTS = 50
"""Gap fills and losses remembered per symbol for the page's timeline."""
CLIENT_BACKLOG = 4
"""Ticks a page may have unread before it is resynchronised with a snapshot instead."""
LINGER_SECONDS = 600.0
"""How long the board keeps collecting after the last page closed, so a reload keeps its charts."""
WATCH_LIMIT = 500
"""Symbols whose history one request may ask for."""
POLICY_VIOLATION = 1008
_FEED_QUEUE = 200_000


class History:
    """One symbol's recent (time, price, trade rate) points, in compact arrays."""

    __slots__ = ("price", "rate", "t")

    def __init__(self) -> None:
        self.t = array("d")
        self.price = array("d")
        self.rate = array("d")

    def append(self, t: float, price: float, rate: float) -> None:
        self.t.append(t)
        self.price.append(price)
        self.rate.append(rate)
        excess = len(self.t) - HISTORY_POINTS
        if excess >= HISTORY_POINTS // 4:
            # Amortised: trim a quarter at a time rather than shifting every tick.
            for column in (self.t, self.price, self.rate):
                del column[:excess]

    def change(self, now: float, window: float) -> float | None:
        """Percent change of the price over the last `window` seconds (None without history)."""
        if not self.t:
            return None
        start = bisect_left(self.t, now - window - 1e-6)
        first = self.price[start] if start < len(self.price) else self.price[-1]
        if first == 0:
            return None
        return round((self.price[-1] - first) / first * 100.0, 4)


def _plain(value: Any) -> Any:
    """Wire form of a row value: datetimes as epoch milliseconds, enums as their value."""
    if isinstance(value, datetime):
        return round(value.timestamp() * 1000.0, 3)
    if isinstance(value, Enum):
        return value.value
    return value


UNSHOWN = frozenset({"trades", "last_trade_id", "last_trade_time"})
"""Fields the page does not show that change on every trade: left out, they would be a third
of every tick with all symbols streaming (the arrival time of the last trade is `last_seen`)."""


def row_of(state: SymbolState) -> dict[str, Any]:
    """The API's `SymbolState` but `UNSHOWN`, so fields it gains (an owner) reach the page."""
    return {key: _plain(value) for key, value in state.model_dump().items() if key not in UNSHOWN}


class Snapshot(msgspec.Struct, tag="snapshot", tag_field="type"):
    """Everything a page needs to draw its table: sent on connect and after falling behind."""

    t: float
    interval: float
    windows: dict[str, float]
    rows: list[dict[str, Any]]
    tree: dict[str, Any]
    health: dict[str, Any]


class Tick(msgspec.Struct, tag="tick", tag_field="type"):
    """What changed since the previous tick; `tree`/`health` only when they changed."""

    t: float
    rows: dict[str, dict[str, Any]]
    removed: list[str]
    tree: dict[str, Any] | None = None
    health: dict[str, Any] | None = None


class HistoryReply(msgspec.Struct, tag="history", tag_field="type"):
    """One symbol's recent points and gap events, for its charts."""

    symbol: str
    t: list[float]
    price: list[float]
    rate: list[float]
    gaps: list[tuple[float, str, int]]


class Problem(msgspec.Struct, tag="error", tag_field="type"):
    detail: str


class Watch(msgspec.Struct, tag="watch", tag_field="type", forbid_unknown_fields=True):
    """From the page: send me the history of these symbols (those it is about to draw)."""

    symbols: list[str]


_encode = msgspec.json.Encoder().encode
_decode_watch = msgspec.json.Decoder(Watch).decode


class LiveBoard:
    """The pure core: rows, prices, histories and gap times, and the deltas between ticks."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.prices: dict[str, float] = {}
        self.seen: dict[str, float] = {}
        self.histories: dict[str, History] = {}
        self.gaps: dict[str, deque[tuple[float, str, int]]] = {}
        self.tree: dict[str, Any] = {}
        self.health: dict[str, Any] = {}
        self.t = 0.0

    def take_trades(self, events: Iterable[object], now: float) -> None:
        """Remember each symbol's last price and when its last trade arrived (epoch seconds).

        The arrival time, not the exchange's trade time, says how long a symbol has been
        quiet: it needs no clock agreement with the exchange and is right for replays too.
        """
        prices = self.prices
        seen = self.seen
        at = round(now * 1000.0, 3)
        for event in events:
            if type(event) is TradeEvent:
                prices[event.symbol] = float(event.price)
                seen[event.symbol] = at

    def update(
        self,
        rows: Iterable[dict[str, Any]] | None,
        tree: dict[str, Any],
        health: dict[str, Any],
        now: float,
    ) -> Tick:
        """Fold in this tick's rows (None: the database did not answer, keep the last ones)."""
        self.t = now
        changed: dict[str, dict[str, Any]] = {}
        removed: list[str] = []
        if rows is not None:
            seen: set[str] = set()
            for row in rows:
                symbol = row["symbol"]
                seen.add(symbol)
                self._extend(symbol, row, now)
                before = self.rows.get(symbol)
                if before is None:
                    changed[symbol] = row
                else:
                    delta = {k: v for k, v in row.items() if before.get(k) != v}
                    if delta:
                        changed[symbol] = delta
                self.rows[symbol] = row
            removed = [symbol for symbol in self.rows if symbol not in seen]
            for symbol in removed:
                self._forget(symbol)
        tick = Tick(t=now, rows=changed, removed=removed)
        if tree != self.tree:
            self.tree = tick.tree = tree
        if health != self.health:
            self.health = tick.health = health
        return tick

    def _extend(self, symbol: str, row: dict[str, Any], now: float) -> None:
        """Add the price, the change columns, the history point and any new gap events."""
        before = self.rows.get(symbol)
        for kind in ("filled", "lost"):
            count = row.get(f"gaps_{kind}", 0) - (before or {}).get(f"gaps_{kind}", 0)
            if before is not None and count > 0:
                self.gaps.setdefault(symbol, deque(maxlen=GAP_EVENTS)).append((now, kind, count))
        price = self.prices.get(symbol)
        row["price"] = price
        row["last_seen"] = self.seen.get(symbol)
        if row.get("state") == "stopped":
            self.histories.pop(symbol, None)
            for name in CHANGE_WINDOWS:
                row[name] = None
            return
        history = self.histories.get(symbol)
        if price is not None:
            if history is None:
                history = self.histories[symbol] = History()
            history.append(now, price, float(row.get("rate") or 0.0))
        for name, window in CHANGE_WINDOWS.items():
            row[name] = None if history is None else history.change(now, window)

    def _forget(self, symbol: str) -> None:
        del self.rows[symbol]
        self.prices.pop(symbol, None)
        self.seen.pop(symbol, None)
        self.histories.pop(symbol, None)
        self.gaps.pop(symbol, None)

    def snapshot(self, interval: float) -> Snapshot:
        return Snapshot(
            t=self.t,
            interval=interval,
            windows=CHANGE_WINDOWS,
            rows=list(self.rows.values()),
            tree=self.tree,
            health=self.health,
        )

    def history(self, symbol: str) -> HistoryReply:
        history = self.histories.get(symbol) or History()
        return HistoryReply(
            symbol=symbol,
            t=history.t.tolist(),
            price=history.price.tolist(),
            rate=history.rate.tolist(),
            gaps=list(self.gaps.get(symbol, ())),
        )


class Page:
    """One connected page: a short queue of encoded messages, resynchronised when it overflows."""

    def __init__(self, socket: WebSocket) -> None:
        self.socket = socket
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(CLIENT_BACKLOG)
        self.needs_snapshot = True
        self._sending = asyncio.Lock()

    async def send(self, message: bytes) -> None:
        """Ticks and history replies come from two tasks; one frame at a time goes out."""
        async with self._sending:
            await self.socket.send_text(message.decode())


class LiveFeed:
    """Runs the board while pages are connected (and a while after), and serves `/ws/live`."""

    def __init__(
        self,
        service: ServiceView,
        *,
        interval: float = TICK_SECONDS,
        linger: float = LINGER_SECONDS,
    ) -> None:
        self._service = service
        self.interval = interval
        self._linger = linger
        self.board = LiveBoard()
        self._pages: set[Page] = set()
        self._task: asyncio.Task[None] | None = None
        self._idle_since = 0.0

    def join(self, socket: WebSocket) -> Page:
        page = Page(socket)
        self._pages.add(page)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="live-feed")
        return page

    def leave(self, page: Page) -> None:
        self._pages.discard(page)
        if not self._pages:
            self._idle_since = time.monotonic()

    async def close(self) -> None:
        """Stop collecting (the server is shutting down)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        with self._service.pubsub.subscribe(
            None, maxlen=_FEED_QUEUE, overflow=Overflow.DROP_OLDEST
        ) as sub:
            prices = asyncio.create_task(self._take_prices(sub))
            try:
                due = time.monotonic()
                while self._pages or time.monotonic() - self._idle_since < self._linger:
                    await self._tick()
                    # A steady rhythm: the tick's own time comes out of the wait, never on top.
                    due = max(due + self.interval, time.monotonic())
                    await asyncio.sleep(due - time.monotonic())
            finally:
                # No await from the loop's last check to the end: a page that joins meanwhile
                # finds this task done and starts a new one.
                prices.cancel()
                self.board = LiveBoard()

    async def _take_prices(self, sub: Subscription) -> None:
        while batch := await sub.get_batch():
            self.board.take_trades(batch, time.time())

    async def _tick(self) -> None:
        service = self._service
        rows: list[dict[str, Any]] | None
        try:
            rows = [row_of(state) for state in await service.symbol_states()]
        except DatabaseError as error:
            log.debug("Live feed keeps the last rows: %s", error)
            rows = None
        tick = self.board.update(
            rows, service.root.describe(), service.health().model_dump(), time.time()
        )
        encoded_tick = _encode(tick)
        encoded_snapshot: bytes | None = None
        for page in self._pages:
            if not page.needs_snapshot and page.queue.full():
                page.needs_snapshot = True
                while not page.queue.empty():
                    page.queue.get_nowait()
            if page.needs_snapshot:
                if encoded_snapshot is None:
                    encoded_snapshot = _encode(self.board.snapshot(self.interval))
                page.queue.put_nowait(encoded_snapshot)
                page.needs_snapshot = False
            else:
                page.queue.put_nowait(encoded_tick)

    def endpoint(self) -> Callable[[WebSocket], Awaitable[None]]:
        async def live(socket: WebSocket) -> None:
            if is_foreign_origin(socket.headers):
                # Refused before the upgrade: the browser sees HTTP 403.
                await socket.close(code=POLICY_VIOLATION, reason="cross-origin live feed refused")
                return
            await socket.accept()
            page = self.join(socket)
            send = asyncio.ensure_future(self._send(page))
            listen = asyncio.ensure_future(self._listen(page))
            try:
                await asyncio.wait({send, listen}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                self.leave(page)
                for task in (send, listen):
                    task.cancel()
                await asyncio.gather(send, listen, return_exceptions=True)

        return live

    async def _send(self, page: Page) -> None:
        while True:
            await page.send(await page.queue.get())

    async def _listen(self, page: Page) -> None:
        """Answer `watch` requests with histories; a bad request gets an error, not a close."""
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                raw = await page.socket.receive_text()
                try:
                    watch = _decode_watch(raw)
                except msgspec.DecodeError as error:
                    await page.send(_encode(Problem(f"bad request: {error}")))
                    continue
                for symbol in watch.symbols[:WATCH_LIMIT]:
                    if symbol in self.board.rows:
                        await page.send(_encode(self.board.history(symbol)))
