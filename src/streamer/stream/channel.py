"""One symbol's place in the stream: ordering, de-duplication, gap detection, publishing, stats.

`on_trade` runs synchronously inside the websocket read callback for every trade, so it does the
least it can: compare the id with the last one and append the trade to an outgoing list. The
read callback flushes every touched channel once per socket read, so subscribers get a burst per
read (one queue extend, one wake-up) instead of one hand-over per trade. Anything out of the
ordinary (a jump in ids) switches the channel into holding live trades and wakes the symbol's
worker, which fetches the missing trades over REST and then releases the held ones in order.
Duplicates (the overlap of two connections during a rotation, a replay after a resubscribe) are
dropped by id, so subscribers see each trade id once and in increasing order.

Every trade passes `streamer.stream.validate` first: one that fails is dropped and counted by
reason, and a symbol whose trades keep failing is quarantined (its worker parks it and retries
it later), so a poisoned feed never reaches a subscriber and never becomes the symbol's position.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

from streamer.events import MILLISECONDS, GapNotice, TradeEvent
from streamer.logs import RateLimitedLog
from streamer.stream.pubsub import Route
from streamer.stream.stats import LiveState, SymbolStats
from streamer.stream.validate import HIGHEST, LOWEST, Rejection, TradeRule, check

log = logging.getLogger(__name__)

_LOWEST, _HIGHEST = LOWEST, HIGHEST
_CONNECTION_STATES = frozenset({LiveState.CONNECTING, LiveState.STREAMING, LiveState.BACKOFF})


def _trade_id(event: TradeEvent) -> int:
    return event.trade_id


def _describe(event: TradeEvent) -> str:
    return (
        f"id {event.trade_id}, time {event.trade_time}/{event.event_time}, "
        f"price {event.price}, qty {event.quantity}"
    )


class SymbolChannel:
    """The live state of one streamed symbol; written by the read callback, read by the worker."""

    __slots__ = (
        "_dirty",
        "_earliest",
        "_error",
        "_expect",
        "_held",
        "_jump_candidate",
        "_last_id",
        "_latest",
        "_log",
        "_out",
        "_quarantine",
        "_recent_rejections",
        "_route",
        "_rule",
        "_unit",
        "_waiter",
        "active_at",
        "attached_at",
        "checked_trades",
        "duplicates",
        "gap",
        "gaps_expired",
        "gaps_filled",
        "gaps_lost",
        "last",
        "malformed",
        "quarantines",
        "rate",
        "reason",
        "rejected",
        "since",
        "state",
        "symbol",
        "trades",
        "trades_backfilled",
        "trades_lost",
    )

    def __init__(
        self,
        symbol: str,
        route: Route,
        dirty: list[SymbolChannel],
        last_id: int | None = None,
        rule: TradeRule | None = None,
        unit: int = MILLISECONDS,
    ) -> None:
        self.symbol = symbol
        self._rule = rule if rule is not None else TradeRule()
        self._unit = unit
        self._earliest, self._latest = self._rule.time_bounds(time.time(), unit)
        self._recent_rejections: deque[tuple[float, Rejection]] = deque(
            maxlen=self._rule.quarantine_after
        )
        self._quarantine: str | None = None
        self._jump_candidate: int | None = None
        self._log = RateLimitedLog(log)
        self._route = route
        self._dirty = dirty
        self._out: list[TradeEvent] = []
        self._last_id = last_id
        self._expect = last_id + 1 if last_id is not None else None
        self.last: TradeEvent | None = None
        self.trades = 0
        self.duplicates = 0
        self.malformed = 0
        self.gaps_filled = 0
        self.gaps_lost = 0
        self.gaps_expired = 0
        self.trades_backfilled = 0
        self.trades_lost = 0
        self.rejected: dict[str, int] = {}
        self.quarantines = 0
        self.reason: str | None = None
        self.rate = 0.0
        self.state = LiveState.CONNECTING
        self.since = time.time()
        self.gap: tuple[int, int] | None = None
        self.active_at = time.monotonic()
        self.attached_at = self.active_at
        self.checked_trades = 0
        self._held: list[TradeEvent] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None

    @property
    def last_id(self) -> int | None:
        """The id of the last trade taken (published, or announced lost)."""
        expect = self._expect
        return expect - 1 if expect is not None else self._last_id

    @property
    def rule(self) -> TradeRule:
        """The validation limits this symbol's trades are held to."""
        return self._rule

    @property
    def quarantined(self) -> str | None:
        """Why the symbol is quarantined, or None when it is not."""
        return self._quarantine

    def refresh_bounds(self, now: float) -> None:
        """Move the accepted time range along with the local clock (`now`, epoch seconds)."""
        self._earliest, self._latest = self._rule.time_bounds(now, self._unit)

    def on_trade(self, event: TradeEvent) -> None:
        """A live trade arrived: take it if it is the next id and sane, else see what it is."""
        trade_id = event.trade_id
        if trade_id == self._expect:
            # `validate.check` without what the decoder already enforced (id and time ranges)
            # and without the id (it follows one already judged), inlined: a function call
            # per trade would cost as much as the comparisons.
            try:
                sane = (
                    self._earliest <= event.trade_time <= self._latest
                    and _LOWEST <= event.price <= _HIGHEST
                    and _LOWEST <= event.quantity <= _HIGHEST
                )
            except ArithmeticError:  # NaN compares by raising InvalidOperation
                sane = False
            if sane:
                self._expect = trade_id + 1
                out = self._out
                if not out:
                    self._dirty.append(self)
                out.append(event)
                return
        self._unexpected(event)

    def _unexpected(self, event: TradeEvent) -> None:
        if self._quarantine is not None:
            return
        reason = check(event, self._earliest, self._latest)
        if reason is not None:
            self.reject(reason, _describe(event))
            return
        held = self._held
        if held is not None:
            held.append(event)
            return
        trade_id = event.trade_id
        last_id = self.last_id
        if last_id is None:
            self._expect = trade_id
            self.on_trade(event)
            return
        reason = self._rule.check_jump(
            trade_id, event.trade_time, last_id, self._last_time(), self._unit
        )
        if reason is Rejection.ID_JUMP and self._confirms_jump(trade_id):
            reason = None
        if reason is not None:
            self.reject(reason, _describe(event))
            return
        if trade_id <= last_id:
            self.duplicates += 1
            return
        self._last_id = last_id
        self._expect = None
        self.gap = (last_id + 1, trade_id - 1)
        self._held = [event]
        self._wake()

    def _confirms_jump(self, trade_id: int) -> bool:
        """Whether a jump too large for the rule is backed by the trade refused just before.

        One outlier (a poisoned `t = 10^12`) is refused; a stream that really moved on (a long
        outage, a position restored from the database with no time to judge it by) sends the
        next ids right after it, and then the jump is believed and becomes a gap.
        """
        candidate, self._jump_candidate = self._jump_candidate, trade_id
        return candidate is not None and 0 < trade_id - candidate <= self._rule.max_id_jump

    def _last_time(self) -> int | None:
        out = self._out
        last = out[-1] if out else self.last
        return last.trade_time if last is not None else None

    def reject(self, reason: Rejection, detail: str) -> None:
        """Drop an untrustworthy trade: count it, log it (rate-limited), quarantine on repeats."""
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        self._log.warning(
            "%s: dropped a trade that fails validation (%s): %s", self.symbol, reason, detail
        )
        recent = self._recent_rejections
        now = time.monotonic()
        recent.append((now, reason))
        rule = self._rule
        if len(recent) == rule.quarantine_after and now - recent[0][0] <= rule.quarantine_window:
            self.quarantine(
                f"{rule.quarantine_after} trades failed validation within "
                f"{rule.quarantine_window:g}s (last: {reason})"
            )

    def quarantine(self, reason: str) -> None:
        """Stop believing this symbol: drop its live trades and wake its worker to park it.

        The position stays where the last trusted trade left it, so what happens while parked
        is back-filled (or announced lost) after the release, as after any outage.
        """
        if self._quarantine is not None:
            return
        self._last_id = self.last_id
        self._expect = None
        self._held = None
        self.gap = None
        self._quarantine = reason
        self.quarantines += 1
        self.set_state(LiveState.QUARANTINED, reason)
        log.warning("%s: quarantined: %s", self.symbol, reason)
        self._wake()

    def release(self) -> None:
        """End the quarantine; ids far behind the old position drop it, so it is not kept.

        A position that later trades keep contradicting (ids far behind it) came from a bad
        frame that passed as a first trade; the next trade starts the symbol afresh instead.
        """
        if self._quarantine is None:
            return
        if any(reason is Rejection.ID_BEHIND for _, reason in self._recent_rejections):
            self._last_id = None
        self._quarantine = None
        self._recent_rejections.clear()
        self._expect = self._last_id + 1 if self._last_id is not None else None
        self.set_state(LiveState.CONNECTING)

    def settle(self) -> bool:
        """Order the held trades and say whether trades are still missing before them.

        Trades of one symbol can arrive out of order when two connections overlap (rotation);
        after a short wait the "gap" is often already covered by late frames, and then no
        REST call is needed. When nothing is missing the held trades are released at once.
        """
        held = self._held
        if held is None:
            self.gap = None
            return False
        held.sort(key=_trade_id)
        first = held[0].trade_id
        if self.last_id is None or first <= self.last_id + 1:
            self.gap = None
            self._release()
            self.flush()
            return False
        self.gap = (self.last_id + 1, first - 1)
        return True

    def _release(self) -> None:
        held, self._held = self._held, None
        if self._quarantine is not None:
            return
        last_id = self._last_id
        self._expect = last_id + 1 if last_id is not None else None
        for event in held or ():
            self.on_trade(event)

    def flush(self) -> None:
        """Publish what `on_trade` collected since the last flush, as one batch."""
        out = self._out
        if out:
            self._out = []
            self._jump_candidate = None
            self.last = out[-1]
            self.trades += len(out)
            self._route.publish_batch(out)

    def set_state(self, state: LiveState, reason: str | None = None) -> None:
        """Enter `state`; what a connection reports does not end a quarantine."""
        if self._quarantine is not None and state in _CONNECTION_STATES:
            return
        if state is not self.state:
            self.state = state
            self.since = time.time()
        self.reason = reason

    # --- the worker's side -------------------------------------------------------------------

    def fail(self, error: BaseException) -> None:
        """The symbol's processing broke: hand the error to the worker, which will crash with it."""
        if self._error is None:
            self._error = error
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self) -> None:
        """Return when there is a gap to fill or a quarantine; raise an error handed to `fail`."""
        while self._error is None and self.gap is None and self._quarantine is None:
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                self._waiter = None
        error, self._error = self._error, None
        if error is not None:
            raise error

    def publish_backfilled(self, event: TradeEvent) -> None:
        """Publish one trade fetched for the current gap (ids must come in order)."""
        if self._last_id is not None and event.trade_id <= self._last_id:
            return
        self._last_id = event.trade_id
        self.trades_backfilled += 1
        self._out.append(event)

    def report_lost(self, first: int, last: int) -> None:
        """Trades first..last cannot be had: tell subscribers and move on past them."""
        self.flush()
        self._route.publish(GapNotice(self.symbol, first, last))
        self.trades_lost += last - first + 1
        self._last_id = last

    def gap_done(self, filled: bool) -> None:
        """The gap was dealt with; release the held live trades through the normal path."""
        if filled:
            self.gaps_filled += 1
        else:
            self.gaps_lost += 1
        self.gap = None
        self._release()
        self.flush()

    def stats(self, connection: str | None = None) -> SymbolStats:
        """A frozen snapshot for status views and metrics."""
        last = self.last
        return SymbolStats(
            symbol=self.symbol,
            state=self.state,
            since=self.since,
            reason=self.reason,
            connection=connection,
            trades=self.trades,
            rate=round(self.rate, 3),
            last_trade_id=self.last_id,
            last_trade_time=last.trade_time if last is not None else None,
            gaps_filled=self.gaps_filled,
            gaps_lost=self.gaps_lost,
            gaps_expired=self.gaps_expired,
            trades_backfilled=self.trades_backfilled,
            trades_lost=self.trades_lost,
            duplicates=self.duplicates,
            malformed=self.malformed,
            rejected=dict(self.rejected),
            quarantines=self.quarantines,
        )
