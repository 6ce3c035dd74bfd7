"""The shared pool of combined-stream connections and the live state of every streamed symbol.

Symbols are packed onto connections up to `streams_per_connection`; a connection that dies
reconnects and resubscribes only its own streams, and every connection in the process shares
one `ConnectGate`, so a thousand symbols starting at once cost a handful of sockets and a
handful of batched SUBSCRIBE messages. Once a second the hub refreshes each symbol's rate and
resubscribes the symbols that have been silent far longer than their own rhythm.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable

from streamer.errors import ExchangeError, StreamerError
from streamer.otp import ChildSpec, Registry, Started
from streamer.stream.backfill import BackfillLimiter
from streamer.stream.channel import SymbolChannel
from streamer.stream.config import EngineConfig
from streamer.stream.market import (
    Connection,
    ConnectionInfo,
    Market,
    MarketProbe,
    OwnedHistory,
    TradeHistory,
)
from streamer.stream.pacing import Backoff
from streamer.stream.pubsub import PubSub, topic
from streamer.stream.stats import LiveState, SymbolStats
from streamer.stream.validate import units_per_second
from streamer.symbols import normalize_symbol

log = logging.getLogger(__name__)


class AlreadyAttached(StreamerError, RuntimeError):
    """A symbol can be streamed by one worker at a time."""


_SILENT_STATES = frozenset({LiveState.STALLED, LiveState.HALTED})


class StreamHub:
    """Connections shared by all symbols, plus per-symbol live stats; a supervised component.

    Workers call `attach`/`detach`; status views call `stats`/`all_stats`; a supervisor runs
    `child_spec()` (or `run`), whose body keeps the stats fresh and closes every connection
    (and the REST client it made for back-fills) when it stops. `registry` names the symbol
    workers (see `streamer.stream.worker`).
    """

    def __init__(
        self,
        market: Market,
        pubsub: PubSub,
        history: TradeHistory | None = None,
        *,
        registry: Registry | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.market = market
        self.config: EngineConfig = market.config
        config = self.config
        self.pubsub = pubsub
        self._history = history
        self._own_history: OwnedHistory | None = None
        self.registry = registry if registry is not None else Registry("streams")
        self.clock = clock
        self.backfills = BackfillLimiter(
            config.backfill_concurrency,
            config.backfill_weight_per_minute,
            clock,
            page_weight=market.history_page_weight,
        )
        self.dirty: list[SymbolChannel] = []
        self._channels: dict[str, SymbolChannel] = {}
        self._connection_of: dict[str, Connection] = {}
        self._connections: list[Connection] = []
        self._tasks: dict[Connection, asyncio.Task[None]] = {}
        self._resume: dict[str, int] = {}
        self.resume_floor: Callable[[str], int | None] = _no_floor
        """The last trade of a symbol a store of the process already holds (the journal):
        a resume never starts before it, so what is held is not fetched, or announced lost,
        again."""
        self._probes: dict[str, asyncio.Task[None]] = {}
        self._refusals: dict[str, tuple[int, int]] = {}
        self._stopped: dict[str, SymbolStats] = {}
        self._failure: BaseException | None = None
        self._serial = 0
        self._last_tick = clock()

    # --- symbols -------------------------------------------------------------------------------

    def attach(self, symbol: str) -> SymbolChannel:
        """Start streaming `symbol` (uppercase) and return its channel; raises AlreadyAttached."""
        if symbol in self._channels:
            raise AlreadyAttached(f"{symbol} is already streaming")
        channel = SymbolChannel(
            symbol,
            self.pubsub.route(topic(symbol)),
            self.dirty,
            self._resume.pop(symbol, None),
            self.config.validation,
            units_per_second(self.config.time_unit),
        )
        channel.active_at = channel.attached_at = self.clock()
        self._channels[symbol] = channel
        self._stopped.pop(symbol, None)
        connection = self._connection_with_room()
        self._connection_of[symbol] = connection
        connection.add([self.market.stream_name(symbol)])
        return channel

    def detach(self, symbol: str) -> None:
        """Stop streaming `symbol`; the next attach back-fills from where it was.

        Every detach keeps the resume point, whatever ended the worker: a crash, a kill, or the
        shutdown of a dynamic supervisor that is about to be refilled. Only `forget` drops it.
        """
        channel = self._channels.pop(symbol, None)
        if channel is None:
            return
        connection = self._connection_of.pop(symbol, None)
        if connection is not None:
            connection.remove([self.market.stream_name(symbol)])
        if channel.last_id is not None:
            self._resume[symbol] = channel.last_id
        channel.set_state(LiveState.STOPPED)
        channel.rate = 0.0
        self._stopped[symbol] = channel.stats()

    async def sit_out(self, channel: SymbolChannel, backoff: Backoff) -> None:
        """Park a quarantined symbol: off its connection for a backoff, then streamed again.

        Its worker keeps running and its neighbours are untouched; it comes back on whichever
        connection has room, so a connection that carried its bad data need not carry it again.
        """
        symbol = channel.symbol
        connection = self._connection_of.pop(symbol, None)
        if connection is not None:
            connection.remove([self.market.stream_name(symbol)])
        delay = backoff.next_delay()
        log.warning("%s: quarantined (%s); retrying in %.1fs", symbol, channel.quarantined, delay)
        await asyncio.sleep(delay)
        if self._channels.get(symbol) is not channel:
            return
        channel.release()
        connection = self._connection_with_room()
        self._connection_of[symbol] = connection
        connection.add([self.market.stream_name(symbol)])

    def forget(self, symbol: str) -> None:
        """Drop `symbol`'s resume point: it was stopped on purpose, so its next start is fresh."""
        self._resume.pop(symbol, None)
        self._refusals.pop(symbol, None)

    def positions(self) -> dict[str, int]:
        """The last trade id of every symbol that has one: attached ones and kept resume points.

        This is what a restart of the whole process needs to carry on without a hole: saved
        and given back through `resume_from`, it makes the next attach back-fill from there.
        """
        result = dict(self._resume)
        for symbol, channel in self._channels.items():
            last_id = channel.last_id
            if last_id is not None:
                result[symbol] = last_id
        return result

    def resume_from(self, symbol: str, last_id: int) -> None:
        """Make the next attach of `symbol` continue after trade `last_id`.

        The trades since then are back-filled (at most `max_backfill` of them; older ones are
        announced lost), as after any reconnect. An attached symbol keeps its own position.
        """
        symbol = normalize_symbol(symbol)
        floor = self.resume_floor(symbol)
        self._resume[symbol] = last_id if floor is None else max(last_id, floor)

    @property
    def history(self) -> TradeHistory:
        """Where gaps are filled from: the given one, else the market's own history client."""
        if self._history is not None:
            return self._history
        if self._own_history is None:
            self._own_history = self.market.history()
        return self._own_history

    def channel(self, symbol: str) -> SymbolChannel | None:
        return self._channels.get(symbol)

    def _connection_with_room(self, avoid: Connection | None = None) -> Connection:
        cap = self.market.streams_per_connection
        for connection in self._connections:
            if connection.load < cap and connection is not avoid:
                return connection
        self._serial += 1
        connection = self.market.connection(
            f"conn-{self._serial}", self._channels, self.dirty, self.clock, self._refused
        )
        self._connections.append(connection)
        self._spawn(connection)
        return connection

    def _refused(self, connection: Connection, stream: str) -> None:
        """A stream refused again and again on one connection is tried on another one.

        A refusal may be about the connection (it is full on the exchange's side), not the
        stream. After 3 refusals the stream moves, then after 6, 12, ... more, so a stream the
        exchange refuses everywhere costs ever rarer moves (and connection attempts).
        """
        symbol = self.market.symbol_of(stream)
        if self._connection_of.get(symbol) is not connection:
            return
        count, move_at = self._refusals.get(symbol, (0, 3))
        count += 1
        if count < move_at:
            self._refusals[symbol] = (count, move_at)
            return
        self._refusals[symbol] = (0, move_at * 2)
        connection.remove([stream])
        elsewhere = self._connection_with_room(avoid=connection)
        self._connection_of[symbol] = elsewhere
        elsewhere.add([stream])
        log.warning(
            "%s: refused %d times on %s; trying %s", symbol, count, connection.name, elsewhere.name
        )

    def _spawn(self, connection: Connection) -> None:
        task = asyncio.get_running_loop().create_task(connection.run(), name=connection.name)
        self._tasks[connection] = task
        task.add_done_callback(lambda t: self._connection_ended(connection, t))

    def _connection_ended(self, connection: Connection, task: asyncio.Task[None]) -> None:
        self._tasks.pop(connection, None)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("%s crashed: %r", connection.name, error)
            self._failure = self._failure or error
            return
        if connection.load:
            self._spawn(connection)
        elif connection in self._connections:
            self._connections.remove(connection)

    # --- status --------------------------------------------------------------------------------

    def stats(self, symbol: str) -> SymbolStats | None:
        """Live stats of one symbol, `stopped` ones included; None if never seen."""
        channel = self._channels.get(symbol)
        if channel is not None:
            connection = self._connection_of.get(symbol)
            return channel.stats(connection.name if connection is not None else None)
        return self._stopped.get(symbol)

    def all_stats(self) -> dict[str, SymbolStats]:
        """Stats of every symbol streaming now or stopped since the hub started."""
        result = dict(self._stopped)
        for symbol in self._channels:
            data = self.stats(symbol)
            if data is not None:
                result[symbol] = data
        return result

    def connections(self) -> list[ConnectionInfo]:
        """What each connection carries and how it is doing."""
        return [connection.describe() for connection in self._connections]

    # --- the supervised body -------------------------------------------------------------------

    def child_spec(self, id: str = "stream_hub") -> ChildSpec:
        """A permanent worker spec running this hub."""
        return ChildSpec(id=id, start=self.run)

    async def run(self, started: Started | None = None) -> None:
        """Refresh rates and watch for stale symbols until cancelled; then close every socket.

        Symbols stay attached across a restart of the hub: their workers keep running, their
        streams are carried by new connections, and the hole is back-filled from their last id.
        """
        self._failure = None
        self._last_tick = self.clock()
        for symbol, channel in self._channels.items():
            if symbol not in self._connection_of and channel.quarantined is None:
                connection = self._connection_with_room()
                self._connection_of[symbol] = connection
                connection.add([self.market.stream_name(symbol)])
        if started is not None:
            started()
        try:
            while True:
                await asyncio.sleep(self.config.check_interval)
                if self._failure is not None:
                    raise self._failure
                self._tick()
        finally:
            await self._close_all()

    def _tick(self) -> None:
        now = self.clock()
        elapsed = max(now - self._last_tick, 1e-6)
        self._last_tick = now
        stale: dict[Connection, list[str]] = defaultdict(list)
        wall = time.time()
        for symbol, channel in self._channels.items():
            channel.refresh_bounds(wall)
            delta = channel.trades - channel.checked_trades
            channel.rate = delta / elapsed
            if delta:
                channel.checked_trades = channel.trades
                channel.active_at = now
                if channel.state in _SILENT_STATES:
                    channel.set_state(LiveState.STREAMING)
                continue
            connection = self._connection_of.get(symbol)
            if connection is None or connection.status != "connected":
                channel.active_at = now
                continue
            if now - channel.active_at > self._stale_after(channel, now):
                stale[connection].append(self.market.stream_name(symbol))
                channel.active_at = now
                self._probe(channel)
        for connection, streams in stale.items():
            log.info("%s: resubscribing %d silent stream(s)", connection.name, len(streams))
            connection.resubscribe(streams)

    def _probe(self, channel: SymbolChannel) -> None:
        """Ask the exchange, cheaply, why a symbol is silent (one probe per symbol at a time)."""
        history = self.history
        if channel.symbol in self._probes or not isinstance(history, MarketProbe):
            return
        task = asyncio.get_running_loop().create_task(self._ask_why_silent(channel, history))
        self._probes[channel.symbol] = task
        task.add_done_callback(lambda _: self._probes.pop(channel.symbol, None))

    async def _ask_why_silent(self, channel: SymbolChannel, probe: MarketProbe) -> None:
        """`stalled` when the exchange has trades the stream did not bring, `halted` when the
        exchange says the symbol does not trade; a quiet market stays `streaming`."""
        symbol = channel.symbol
        try:
            latest = await probe.recent_trades(symbol, 1)
            last_id = channel.last_id
            if latest and (last_id is None or latest[-1].id > last_id):
                reason = f"silent while the exchange traded up to id {latest[-1].id}"
                channel.set_state(LiveState.STALLED, reason)
                log.warning("%s: stalled: %s; resubscribed", symbol, reason)
                return
            status = await probe.symbol_status(symbol)
        except (ExchangeError, OSError) as error:
            log.info("%s: silent; the exchange could not be asked why (%s)", symbol, error)
            return
        if status != "TRADING" and channel.trades == channel.checked_trades:
            channel.set_state(LiveState.HALTED, f"the exchange lists it as {status}")
            log.warning("%s: halted: the exchange lists it as %s", symbol, status)

    def _stale_after(self, channel: SymbolChannel, now: float) -> float:
        """Silence that makes a symbol suspect: far longer than its own trade rhythm.

        The rhythm is the symbol's trades over the time since it was attached, both counted
        from the same moment and on the hub's clock.
        """
        if channel.trades == 0:
            return self.config.stale_min
        age = max(now - channel.attached_at, 1e-3)
        return max(self.config.stale_min, self.config.stale_factor * age / channel.trades)

    async def _close_all(self) -> None:
        tasks = [*self._tasks.values(), *self._probes.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._connections.clear()
        self._connection_of.clear()
        for channel in self._channels.values():
            channel.set_state(LiveState.CONNECTING)
        if self._own_history is not None:
            own, self._own_history = self._own_history, None
            await own.aclose()


def _no_floor(symbol: str) -> int | None:
    return None
