"""`Streamer`: the whole service inside a trading program's own asyncio loop.

A program that wants trades in-process should not need to know about `Service`, `Settings`, the
database's readiness or the streaming supervisor. `Streamer` wires them: it prepares the settings
database (migrating it, and seeding it from the exchange when a wanted symbol is not there yet),
runs the supervision tree in a task of the caller's loop without touching its signal handlers,
switches the wanted symbols on, and stops the tree child by child on the way out, so a program's
end never looks like a crash.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from types import TracebackType

from streamer.api.models import SymbolState
from streamer.binance.rest import BinanceRest
from streamer.config import BINANCE_REST_URL, BINANCE_WS_URL, Settings
from streamer.db import SettingsRepository, Status, create_engine, upgrade
from streamer.db.seed import seed
from streamer.errors import StreamerError
from streamer.service import Service
from streamer.service.streaming import StartResult, StopResult
from streamer.stream.pubsub import DEFAULT_MAXLEN, Overflow, Subscription, topic
from streamer.stream.stats import LiveState
from streamer.symbols import normalize_symbol

log = logging.getLogger(__name__)


class NotStreaming(StreamerError, LookupError):
    """A subscription asked for a symbol that no worker streams: it would wait forever."""


class NotRunning(StreamerError, RuntimeError):
    """The `Streamer` is not running: it was never started, or it has stopped."""


class Streamer:
    """Live trades of `symbols` in this process, under supervision, until `stop()`.

    ```python
    async with Streamer(symbols=["ETHUSDT"]) as streamer:
        async for event in streamer.trades("ETHUSDT"):
            ...
    ```

    The symbols are switched on in the settings database, like `streamer start` does, so they
    stream again on the next start; symbols already `on` in that database stream too. No HTTP
    API is served unless `port` is given.
    """

    def __init__(
        self,
        *,
        symbols: Iterable[str] = (),
        database_url: str | None = None,
        ws_url: str = BINANCE_WS_URL,
        rest_url: str = BINANCE_REST_URL,
        port: int | None = None,
        host: str = "127.0.0.1",
        token: str | None = None,
    ) -> None:
        self._symbols = list(dict.fromkeys(normalize_symbol(symbol) for symbol in symbols))
        values: dict[str, object] = {"ws_url": ws_url, "rest_url": rest_url, "host": host}
        if database_url is not None:
            values["database_url"] = database_url
        if port is not None:
            values["port"] = port
        if token is not None:
            values["token"] = token
        self.settings = Settings.model_validate(values)
        self._http = port is not None
        self._service: Service | None = None
        self._running: asyncio.Task[None] | None = None
        self._subscriptions: list[Subscription] = []

    async def __aenter__(self) -> Streamer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def service(self) -> Service:
        """The running service, for what this class does not cover (its pub/sub, its tree)."""
        if self._service is None or self._running is None or self._running.done():
            raise NotRunning("the streamer is not running: call start() or use `async with`")
        return self._service

    async def start(self) -> None:
        """Prepare the database, start the tree, and stream the symbols given at construction.

        Raises `UnknownSymbol` for a symbol the exchange does not list, `DatabaseError` when the
        database cannot be used, and `StartError` when the tree cannot start; nothing is left
        running after a failed start.
        """
        if self._running is not None and not self._running.done():
            return
        await self._prepare_database()
        service = Service(self.settings, http=self._http)
        service.open_journal()
        up = asyncio.Event()
        running = asyncio.create_task(service.root.run(up.set), name="streamer")
        self._service, self._running = service, running
        try:
            await _until_up(up, running)
            await service.database_ready.wait()
            await self.start_streaming(*self._symbols)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop every stream and the tree, in order; subscriptions end their iteration."""
        for subscription in self._subscriptions:
            subscription.close()
        self._subscriptions.clear()
        service, running = self._service, self._running
        if service is None or running is None:
            return
        await service.root.stop()
        await asyncio.gather(running, return_exceptions=True)
        service.close_journal()

    async def start_streaming(self, *symbols: str) -> list[StartResult]:
        """Stream these symbols now and on every later start (persisted `on`)."""
        streaming = self.service.streaming
        return [await streaming.start_streaming(symbol) for symbol in symbols]

    async def stop_streaming(self, *symbols: str) -> list[StopResult]:
        """Stop these symbols now and on later starts (persisted `off`)."""
        streaming = self.service.streaming
        return [await streaming.stop_streaming(symbol) for symbol in symbols]

    async def status(self) -> list[SymbolState]:
        """Every symbol that is `on` or has a running worker, with its live state."""
        states = await self.service.symbol_states()
        return [s for s in states if s.status is Status.ON or s.state is not LiveState.STOPPED]

    def trades(
        self,
        *symbols: str,
        maxlen: int = DEFAULT_MAXLEN,
        overflow: Overflow = Overflow.DROP_OLDEST,
    ) -> Subscription:
        """A subscription to the events of `symbols` (every symbol when none is named).

        It yields `TradeEvent`s, a `GapNotice` for trades that could not be had and a
        `Dropped` notice if the consumer falls behind by more than `maxlen` events; its
        iteration ends when the streamer stops. Raises `NotStreaming` at once for a symbol
        that has no running worker, instead of waiting for trades that will never come.
        """
        service = self.service
        wanted = [normalize_symbol(symbol) for symbol in symbols]
        idle = [symbol for symbol in wanted if service.registry.lookup(symbol) is None]
        if idle:
            raise NotStreaming(
                f"{', '.join(idle)} {'is' if len(idle) == 1 else 'are'} not streaming: "
                "start_streaming() first"
            )
        subscription = service.pubsub.subscribe(
            [topic(symbol) for symbol in wanted] if wanted else None,
            maxlen=maxlen,
            overflow=overflow,
        )
        self._subscriptions = [s for s in self._subscriptions if not s.closed]
        self._subscriptions.append(subscription)
        return subscription

    async def _prepare_database(self) -> None:
        """Migrate, and seed from the exchange when a wanted symbol is not in the settings."""
        url = self.settings.resolved_database_url()
        await upgrade(url)
        service_engine = create_engine(url)
        try:
            known = await SettingsRepository(service_engine).symbols()
            if set(self._symbols) <= known:
                return
            async with BinanceRest(self.settings.rest_url) as rest:
                info = await rest.exchange_info()
            report = await seed(service_engine, [entry.symbol for entry in info.symbols])
            log.info("Settings seeded from %s: %s", self.settings.rest_url, report.summary())
        finally:
            await service_engine.dispose()


async def _until_up(up: asyncio.Event, running: asyncio.Task[None]) -> None:
    """Wait until the tree reports started, or raise why it could not start."""
    waiting = asyncio.ensure_future(up.wait())
    try:
        await asyncio.wait({waiting, running}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()
    if not up.is_set():
        running.result()
        raise NotRunning("the streamer stopped while it was starting")
