"""Tests for streamer.binance.connection: keepalive, watchdogs, rotation and every mock fault."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace

import pytest

from streamer.binance.config import StreamerConfig
from streamer.binance.market import SpotMarket
from streamer.events import Event, GapNotice, TradeEvent
from streamer.mock_exchange import Limits, MockConfig, MockExchange
from streamer.stream.hub import StreamHub
from streamer.stream.market import ConnectionInfo
from streamer.stream.pubsub import PubSub, Subscription, topic
from streamer.stream.worker import run_symbol
from tests.binance.fakeserver import FakeServer
from tests.binance.live import live
from tests.polling import eventually

BASE = StreamerConfig(
    backoff_base=0.05,
    backoff_cap=0.2,
    check_interval=0.05,
    dead_after=1.0,
    reorder_window=0.05,
    handshake_timeout=2.0,
)


@dataclass
class Run:
    mock: MockExchange
    hub: StreamHub
    market: SpotMarket
    sub: Subscription
    events: list[Event] = field(default_factory=list)

    @property
    def connection(self) -> ConnectionInfo:
        (only,) = self.hub.connections()
        return only

    def drain(self) -> list[Event]:
        self.events.extend(self.sub.get_nowait_batch())
        return self.events

    def trades(self) -> int:
        return sum(isinstance(e, TradeEvent) for e in self.drain())

    async def more_trades(self, count: int = 20) -> None:
        """Wait until `count` more trades than now have been delivered."""
        target = self.trades() + count
        await eventually(lambda: self.trades() >= target)

    def assert_exactly_once(self) -> None:
        """Every id from the first to the last delivered once, in order, and no gap notice."""
        events = self.drain()
        assert not [e for e in events if isinstance(e, GapNotice)]
        ids = [e.trade_id for e in events if isinstance(e, TradeEvent)]
        assert ids == list(range(ids[0], ids[0] + len(ids)))


@asynccontextmanager
async def streaming(limits: Limits | None = None, **overrides: object) -> AsyncIterator[Run]:
    """A mock with `limits` and a running hub with a worker streaming ADAUSDT from it."""
    async with MockExchange(MockConfig(port=0, speed=1000.0, limits=limits or Limits())) as mock:
        pubsub = PubSub()
        sub = pubsub.subscribe(topic("ADAUSDT"))
        config = replace(BASE, ws_url=mock.ws_url, rest_url=mock.rest_url, **overrides)  # type: ignore[arg-type]
        market = SpotMarket(config)
        hub = StreamHub(market, pubsub)
        tasks = [
            asyncio.create_task(hub.run()),
            asyncio.create_task(run_symbol(hub, "ADAUSDT", lambda: None)),
        ]
        run = Run(mock, hub, market, sub)
        try:
            await run.more_trades()
            yield run
        finally:
            for task in reversed(tasks):
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def test_pings_are_answered_so_the_server_keeps_the_connection() -> None:
    """With a ping every 400 ms and a 600 ms pong deadline the connection survives 2 s.

    (Pings come 50 times faster than the exchange's 20 s, yet within the 4 messages a second
    a connection sends, so every pong can go out at once.)
    """
    async with streaming(Limits(ping_interval=0.4, pong_timeout=0.6)) as run:
        await asyncio.sleep(2.0)
        await run.more_trades()
        assert run.connection.connects == 1


async def test_pong_echoes_the_ping_payload() -> None:
    """A ping's payload comes back unchanged in the pong."""
    async with FakeServer() as server:
        hub = StreamHub(SpotMarket(replace(BASE, ws_url=server.url)), PubSub())
        task = asyncio.create_task(hub.run())
        hub.attach("ETHUSDT")
        await eventually(lambda: len(server.clients) == 1)
        server.ping_all(b"payload-42")
        await eventually(lambda: server.clients[0].pongs == [b"payload-42"])
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_stalled_connection_is_detected_dead_and_replaced_without_loss() -> None:
    """A connection with no frames and no pings for dead_after is replaced; the hole is filled."""
    async with streaming(Limits(ping_interval=0.1)) as run:
        run.mock.faults.stall()
        await eventually(lambda: run.connection.connects == 2)
        await run.more_trades()
        run.assert_exactly_once()


async def test_malformed_frame_is_counted_and_the_stream_goes_on() -> None:
    """A frame that is not JSON is counted as malformed; the same connection keeps streaming."""
    async with streaming() as run:
        run.mock.faults.malformed_frame()
        await eventually(lambda: run.connection.malformed == 1)
        await run.more_trades()
        assert run.connection.connects == 1
        run.assert_exactly_once()


async def test_a_deeply_nested_frame_does_not_drop_the_connection() -> None:
    """JSON nested 100,000 deep is one malformed frame; the connection and its streams go on."""
    async with FakeServer() as server:
        config = replace(BASE, ws_url=server.url, dead_after=30.0)
        pubsub = PubSub()
        sub = pubsub.subscribe(topic("ETHUSDT"))
        hub = StreamHub(SpotMarket(config), pubsub)
        runner = asyncio.create_task(hub.run())
        hub.attach("ETHUSDT")
        await eventually(lambda: bool(server.subscribed("ethusdt@trade")))
        server.trade("ETHUSDT", 1)
        server.broadcast(b'{"stream":' + b"[" * 100_000 + b"]" * 100_000 + b',"data":{}}')
        server.broadcast(b"[" * 100_000 + b"]" * 100_000)
        server.trade("ETHUSDT", 2)
        await eventually(lambda: len(sub) == 2)
        (connection,) = hub.connections()
        assert (connection.connects, connection.malformed) == (1, 2)
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def test_truncated_frame_and_cut_reconnects_without_loss() -> None:
    """Half a frame then a cut connection: the hub reconnects and back-fills the hole."""
    async with streaming() as run:
        run.mock.faults.truncated_frame()
        await eventually(lambda: run.connection.connects == 2)
        await run.more_trades()
        run.assert_exactly_once()


async def test_dropped_connection_reconnects_without_loss() -> None:
    """A connection cut without a close handshake is reconnected; no trade is lost."""
    async with streaming() as run:
        run.mock.faults.drop()
        await eventually(lambda: run.connection.connects == 2)
        await run.more_trades()
        run.assert_exactly_once()


@pytest.mark.parametrize("status", [429, 418])
async def test_refused_handshake_starts_a_cool_down(status: int) -> None:
    """A 429/418 answer to the handshake makes every connection wait, then streaming resumes."""
    async with streaming() as run:
        run.mock.faults.refuse(status, retry_after=1)
        run.mock.faults.drop()
        await eventually(lambda: run.market.gate is not None and run.market.gate.cooldowns >= 1)
        await run.mock.faults.accept()
        await eventually(lambda: run.connection.status == "connected")
        await run.more_trades()
        run.assert_exactly_once()


async def test_refused_tcp_backs_off_and_reconnects() -> None:
    """While TCP connections are refused the hub backs off; once accepted it reconnects."""
    async with streaming() as run:
        await run.mock.faults.refuse_tcp()
        run.mock.faults.drop()
        await eventually(lambda: run.connection.status == "backoff")
        await run.mock.faults.accept()
        await eventually(lambda: run.connection.status == "connected")
        await run.more_trades()
        run.assert_exactly_once()


async def test_server_shutdown_rotates_make_before_break() -> None:
    """On serverShutdown a new socket takes over before the old closes: nothing lost or doubled."""
    async with streaming() as run:
        run.mock.faults.server_shutdown(close_after=0.5)
        await eventually(lambda: run.connection.rotations == 1)
        await run.more_trades(50)
        assert run.connection.connects == 2
        run.assert_exactly_once()


async def test_rotation_before_the_lifetime_cut() -> None:
    """Connections rotate before the server's lifetime cut, never hitting it, losing nothing."""
    async with streaming(Limits(lifetime=1.0), rotate_after=0.4) as run:
        await eventually(lambda: run.connection.rotations >= 3)
        await run.more_trades()
        assert run.connection.connects == run.connection.rotations + 1
        run.assert_exactly_once()


async def test_duplicated_ids_are_delivered_once() -> None:
    """Trades the exchange sends twice reach subscribers once."""
    async with streaming() as run:
        run.mock.faults.duplicate_ids("ADAUSDT", 5)
        await eventually(lambda: live(run.hub, "ADAUSDT").duplicates == 5)
        await run.more_trades()
        run.assert_exactly_once()


async def test_skipped_ids_are_back_filled_in_order() -> None:
    """Trades left out of the stream are fetched over REST and delivered in place."""
    async with streaming() as run:
        skipped = run.mock.faults.skip_ids("ADAUSDT", 7)
        await eventually(lambda: live(run.hub, "ADAUSDT").gaps_filled == 1)
        await run.more_trades()
        run.assert_exactly_once()
        backfilled = [e.trade_id for e in run.drain() if isinstance(e, TradeEvent) and e.backfilled]
        assert backfilled == skipped


async def test_slow_rest_still_fills_the_gap_while_live_trades_wait() -> None:
    """With slow REST answers the gap is still filled and held live trades follow in order."""
    async with streaming() as run:
        run.mock.faults.slow_rest(0.5)
        run.mock.faults.skip_ids("ADAUSDT", 3)
        await eventually(lambda: live(run.hub, "ADAUSDT").gaps_filled == 1)
        await run.more_trades()
        run.assert_exactly_once()


async def test_unfillable_gap_is_announced() -> None:
    """When REST is refused the skipped trades are announced by one gap notice."""
    async with streaming() as run:
        run.mock.faults.refuse(429, retry_after=0)
        skipped = run.mock.faults.skip_ids("ADAUSDT", 4)
        await eventually(lambda: live(run.hub, "ADAUSDT").gaps_lost == 1)
        gaps = [e for e in run.drain() if isinstance(e, GapNotice)]
        assert [(g.first_missing_id, g.last_missing_id) for g in gaps] == [
            (skipped[0], skipped[-1])
        ]


async def test_microsecond_time_unit_is_kept() -> None:
    """With timeUnit=MICROSECOND the trade and event times arrive, and stay, in microseconds."""
    async with streaming(time_unit="MICROSECOND") as run:
        trade = next(e for e in run.drain() if isinstance(e, TradeEvent))
        assert trade.trade_time > 10**15
        assert trade.event_time > 10**15


async def test_a_refused_stream_url_falls_back_to_requests_so_healthy_streams_flow() -> None:
    """When the URL carrying every stream is refused, the streams that fit still go live."""
    symbols = ["ADAUSDT", "BTCPAX", "BTCTUSD"]
    limits = Limits(max_streams=2)
    async with MockExchange(MockConfig(port=0, speed=1000.0, limits=limits)) as mock:
        hub = StreamHub(
            SpotMarket(replace(BASE, ws_url=mock.ws_url, rest_url=mock.rest_url)), PubSub()
        )
        runner = asyncio.create_task(hub.run())
        for symbol in symbols:
            hub.attach(symbol)

        def states() -> list[str]:
            return sorted(live(hub, s).state for s in symbols)

        await eventually(lambda: states() == ["backoff", "streaming", "streaming"])
        healthy = [s for s in symbols if live(hub, s).state == "streaming"]
        await eventually(lambda: all(live(hub, s).trades > 0 for s in healthy))
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def test_a_gap_slower_than_its_deadline_is_announced_and_live_trades_resume() -> None:
    """With REST slower than the gap deadline the gap is announced lost and live trades go on."""
    async with streaming(gap_deadline=0.2) as run:
        run.mock.faults.slow_rest(30.0)
        skipped = run.mock.faults.skip_ids("ADAUSDT", 3)
        await eventually(lambda: live(run.hub, "ADAUSDT").gaps_expired == 1)
        await run.more_trades()
        events = run.drain()
        gaps = [(e.first_missing_id, e.last_missing_id) for e in events if isinstance(e, GapNotice)]
        assert gaps == [(skipped[0], skipped[-1])]
        ids = [e.trade_id for e in events if isinstance(e, TradeEvent)]
        assert ids == sorted(ids)
        assert ids == [i for i in range(ids[0], ids[-1] + 1) if i not in skipped]
