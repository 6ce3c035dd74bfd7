"""One websocket client of the mock: its limits, its faults, and the loop that feeds it trades.

Control messages go through the websockets library (replies, pings, close handshakes); trades
bypass it: pre-encoded frames are written straight to the transport, a chunk's worth per write,
always cut on frame boundaries, and only while the connection is open and the transport is not
paused. That is the whole fast path.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from websockets.frames import Frame, Opcode
from websockets.protocol import State

from streamer.mock_exchange.config import Limits
from streamer.mock_exchange.encoding import frame, server_shutdown
from streamer.mock_exchange.exchange import Exchange
from streamer.mock_exchange.http import KeepAliveHttp
from streamer.mock_exchange.market import AGG_TRADE, TRADE, Market
from streamer.mock_exchange.protocol import Session, parse_stream

log = logging.getLogger(__name__)
POLICY_VIOLATION = 1008
GOING_AWAY = 1001
INTERNAL_ERROR = 1011
_MAX_PACED_SLEEP = 0.5
_MIN_PACED_SLEEP = 0.005  # paced trades due within 5 ms go out together, whatever the stream count


@dataclass
class Cursor:
    """Where one subscribed stream of one connection is: the next trade index to send."""

    market: Market
    kind: str
    index: int


def fed_stream(name: str) -> tuple[str, str] | None:
    """(symbol, kind) of a stream the mock feeds (`@trade`, `@aggTrade`), else None."""
    parsed = parse_stream(name)
    return parsed if parsed is not None and parsed[1] in (TRADE, AGG_TRADE) else None


class MockConnection(KeepAliveHttp):
    """A server connection that counts incoming frames and can be fed, stalled or broken."""

    _numbers = itertools.count(1)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.number = next(MockConnection._numbers)
        self.session = Session(combined=False)
        self.limits = Limits()
        self.exchange: Exchange | None = None
        self.cursors: dict[str, Cursor] = {}
        self.sent = 0
        self.stalled = False
        self.wake = asyncio.Event()
        self.writable = asyncio.Event()
        self.writable.set()
        self.last_pong = time.monotonic()
        self._arrivals: deque[float] = deque()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._violated = False

    # -- limits -------------------------------------------------------------------------------

    def process_event(self, event: Any) -> None:
        """Counts every incoming frame (pings, pongs and messages, like Binance) before use."""
        if isinstance(event, Frame) and event.opcode is not Opcode.CLOSE:
            if self._violated:
                return
            if self._over_rate():
                self._violated = True
                self._spawn(self.close(POLICY_VIOLATION, "Too many messages"))
                return
        super().process_event(event)

    def _over_rate(self) -> bool:
        limit = self.limits.max_messages_per_s
        if limit is None:
            return False
        now = time.monotonic()
        arrivals = self._arrivals
        arrivals.append(now)
        while arrivals and arrivals[0] <= now - 1.0:
            arrivals.popleft()
        return len(arrivals) > limit

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- flow control -------------------------------------------------------------------------

    def pause_writing(self) -> None:
        super().pause_writing()
        self.writable.clear()

    def resume_writing(self) -> None:
        super().resume_writing()
        self.writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.writable.set()
        self.wake.set()

    # -- subscriptions ------------------------------------------------------------------------

    async def follow(self, names: tuple[str, ...] | list[str]) -> None:
        """Start feeding newly subscribed streams from the trade that happens next."""
        assert self.exchange is not None
        for name in names:
            parsed = fed_stream(name)
            market = await self.exchange.load(parsed[0]) if parsed else None
            if parsed and market is not None and name in self.session.streams:
                self.cursors[name] = Cursor(market, parsed[1], market.head())
        self.wake.set()

    def unfollow(self, names: tuple[str, ...]) -> None:
        for name in names:
            self.cursors.pop(name, None)

    # -- the feed -----------------------------------------------------------------------------

    async def feed(self) -> None:
        """Write due trades of every subscribed stream until the connection closes."""
        while self.state is State.OPEN:
            if self.stalled or not self.cursors:
                self.wake.clear()
                await self.wake.wait()
                continue
            await self.writable.wait()
            if self.state is not State.OPEN:
                return
            wrote, next_due = self._write_due()
            if wrote:
                await asyncio.sleep(0)
                continue
            self.wake.clear()
            delay = min(_MAX_PACED_SLEEP, max(_MIN_PACED_SLEEP, next_due - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), delay)

    def feed_ended(self, task: asyncio.Task[None]) -> None:
        """A feed that failed closes its connection with 1011 and says why in the log."""
        if task.cancelled() or task.exception() is None:
            return
        log.warning("connection %s: feed failed: %r", self.number, task.exception())
        self._spawn(self.close(INTERNAL_ERROR, "Internal error"))

    def _write_due(self) -> tuple[bool, float]:
        """One round over the streams: at most one chunk each. Returns (wrote, next due time)."""
        wrote = False
        next_due = math.inf
        combined, micro = self.session.combined, self.session.micro
        write = self.transport.write
        for name, cursor in list(self.cursors.items()):
            market = cursor.market
            if market.paced:
                head = market.head()
                if cursor.index >= head:
                    next_due = min(next_due, market.due_at(cursor.index))
                    continue
            else:
                head = cursor.index + 1_000_000
            data, stop = market.frames(
                cursor.index, head, name if combined else None, micro=micro, kind=cursor.kind
            )
            if data:
                write(data)
            self.sent += stop - cursor.index
            cursor.index = stop
            if not market.paced:
                market.publish(stop)
            wrote = True
        return wrote, next_due

    # -- keepalive and lifetime ---------------------------------------------------------------

    async def keepalive(self) -> None:
        """Ping every interval; drop the connection once no pong came for `pong_timeout`."""
        interval = self.limits.ping_interval
        if interval is None:
            return
        self.last_pong = time.monotonic()
        while self.state is State.OPEN:
            await asyncio.sleep(interval)
            if self.stalled:
                continue
            if time.monotonic() - self.last_pong >= self.limits.pong_timeout:
                await self.close(POLICY_VIOLATION, "Pong timeout")
                return
            try:
                waiter = await self.ping()
            except Exception:  # the connection closed meanwhile
                return
            asyncio.ensure_future(waiter).add_done_callback(self._ponged)

    def _ponged(self, waiter: asyncio.Future[float]) -> None:
        if not waiter.cancelled() and waiter.exception() is None:
            self.last_pong = time.monotonic()

    async def expire(self) -> None:
        """Close the connection at the end of its lifetime, as Binance does after 24 hours."""
        lifetime = self.limits.lifetime
        if lifetime is None:
            return
        await asyncio.sleep(lifetime)
        await self.close(GOING_AWAY, "Connection lifetime expired")

    # -- faults -------------------------------------------------------------------------------

    def drop(self) -> None:
        self.transport.abort()

    def stall(self) -> None:
        self.stalled = True
        self.transport.pause_reading()

    def resume(self) -> None:
        if self.stalled:
            self.stalled = False
            self.transport.resume_reading()
            self.wake.set()

    def send_malformed(self) -> None:
        if self.state is State.OPEN:
            self.transport.write(frame(b'{"e":"trade","E":17000000'))

    def send_truncated(self) -> None:
        if self.state is State.OPEN:
            whole = frame(b'{"e":"trade","E":1700000000000,"s":"BTCUSDT","t":1}')
            self.transport.write(whole[: len(whole) // 2])
        self.transport.abort()

    def server_shutdown(self, now_ms: int, grace: float) -> None:
        if self.state is State.OPEN:
            event_time = now_ms * 1000 if self.session.micro else now_ms
            self.transport.write(server_shutdown(event_time, combined=self.session.combined))
            self._spawn(self._close_later(grace))

    async def _close_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.close(GOING_AWAY, "Server shutdown")

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.number,
            "remote": list(self.remote_address[:2]) if self.remote_address else None,
            "path": self.request.path if self.request else None,
            "streams": list(self.session.streams),
            "combined": self.session.combined,
            "sent": self.sent,
            "stalled": self.stalled,
        }

    def cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()
