"""Tests for streamer.stream.worker: supervised per-symbol workers on the mock exchange."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest

from streamer.binance.config import StreamerConfig
from streamer.binance.market import SpotMarket
from streamer.binance.rest import BinanceRest, HistoricalTrade
from streamer.events import TradeEvent
from streamer.mock_exchange import Limits, MockConfig, MockExchange
from streamer.otp import Child, ChildState, DynamicSupervisor, Restart
from streamer.stream.channel import SymbolChannel
from streamer.stream.hub import StreamHub
from streamer.stream.pubsub import PubSub, topic
from streamer.stream.worker import stream_spec
from tests.binance.fakeserver import FakeServer
from tests.binance.live import live
from tests.polling import eventually


@pytest.fixture
async def supervisor() -> AsyncIterator[DynamicSupervisor]:
    """A running dynamic supervisor, stopped after the test."""
    sup = DynamicSupervisor(max_restarts=100, max_seconds=1.0)
    ready = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(sup.run(lambda: ready.set_result(None)))
    await ready
    yield sup
    await sup.stop()
    await asyncio.gather(task, return_exceptions=True)


async def test_worker_is_named_by_its_uppercase_symbol_and_streams(
    hub: StreamHub, supervisor: DynamicSupervisor, pubsub: PubSub
) -> None:
    """stream_spec(" adausdt ") registers ADAUSDT and its trades reach the topic."""
    sub = pubsub.subscribe(topic("ADAUSDT"))
    child = await supervisor.start_child(stream_spec(" adausdt ", hub))
    assert hub.registry.lookup("ADAUSDT") is child
    assert child.id == "ADAUSDT"
    events = await asyncio.wait_for(sub.get_batch(), 20)
    assert all(isinstance(e, TradeEvent) and e.symbol == "ADAUSDT" for e in events)


async def test_terminating_the_worker_unsubscribes_its_stream(
    hub: StreamHub, supervisor: DynamicSupervisor, mock_exchange: MockExchange
) -> None:
    """Stopping a worker takes its stream off the connection and marks it stopped."""
    await supervisor.start_child(stream_spec("ADAUSDT", hub))
    btc = await supervisor.start_child(stream_spec("BTCPAX", hub))
    await eventually(lambda: live(hub, "BTCPAX").state == "streaming")
    await supervisor.terminate_child(btc)
    (server_side,) = mock_exchange.connections.values()
    await eventually(lambda: list(server_side.session.streams) == ["adausdt@trade"])
    assert live(hub, "BTCPAX").state == "stopped"
    assert hub.registry.lookup("BTCPAX") is None


async def test_an_error_in_one_symbol_quarantines_it_alone_without_a_restart(
    hub: StreamHub, supervisor: DynamicSupervisor, pubsub: PubSub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error while handling ADAUSDT's trades parks ADAUSDT alone; it resumes gap-free."""
    ada = await supervisor.start_child(stream_spec("ADAUSDT", hub))
    btc = await supervisor.start_child(stream_spec("BTCPAX", hub))
    sub = pubsub.subscribe(topic("ADAUSDT"))
    await eventually(lambda: live(hub, "ADAUSDT").trades > 5)
    original = SymbolChannel.on_trade
    failed: list[str] = []

    def flaky(self: SymbolChannel, event: TradeEvent) -> None:
        if self.symbol == "ADAUSDT" and not failed:
            failed.append(self.symbol)
            raise RuntimeError("handler bug")
        original(self, event)

    monkeypatch.setattr(SymbolChannel, "on_trade", flaky)
    await eventually(lambda: live(hub, "ADAUSDT").quarantines == 1)
    await eventually(lambda: live(hub, "ADAUSDT").gaps_filled >= 1)
    assert live(hub, "ADAUSDT").state == "streaming"
    assert (ada.restarts, btc.restarts) == (0, 0)
    ids = [e.trade_id for e in sub.get_nowait_batch() if isinstance(e, TradeEvent)]
    assert ids == list(range(ids[0], ids[0] + len(ids)))


async def test_a_refused_stream_backs_off_alone_then_streams_on_another_connection(
    pubsub: PubSub,
) -> None:
    """A refused stream waits in backoff while its neighbours stream, then moves connection.

    The mock takes two streams per connection and three permanent workers share one: the URL
    carrying all three is refused, the connection subscribes by request instead, and the one
    stream that does not fit is refused again and again, under a supervisor with the default
    restart intensity (3 in 5 s) that would give up if a refusal crashed its worker. After a
    few refusals on that connection the stream is asked for on a second one, where it fits.
    """
    symbols = ["ADAUSDT", "BTCPAX", "BTCTUSD"]
    limits = Limits(max_streams=2)
    async with MockExchange(MockConfig(port=0, speed=1000.0, limits=limits)) as mock:
        config = StreamerConfig(
            ws_url=mock.ws_url,
            rest_url=mock.rest_url,
            backoff_base=0.05,
            backoff_cap=0.2,
            check_interval=0.05,
        )
        hub = StreamHub(SpotMarket(config), pubsub)
        sup = DynamicSupervisor()
        ready = asyncio.get_running_loop().create_future()
        tasks = [
            asyncio.create_task(hub.run()),
            asyncio.create_task(sup.run(lambda: ready.set_result(None))),
        ]
        await ready
        children = [await sup.start_child(stream_spec(s, hub)) for s in symbols]

        def states() -> list[str]:
            return sorted(live(hub, s).state for s in symbols)

        await eventually(lambda: states() == ["backoff", "streaming", "streaming"])
        refused = next(s for s in symbols if live(hub, s).state == "backoff")
        first = live(hub, refused).connection
        await eventually(lambda: states() == ["streaming"] * 3)
        assert live(hub, refused).connection != first
        await eventually(lambda: all(live(hub, s).trades > 0 for s in symbols))
        assert [c.restarts for c in children] == [0, 0, 0]
        assert len(hub.connections()) == 2
        assert not tasks[1].done()
        await sup.stop()
        tasks[0].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_starting_1500_symbols_at_once_stays_within_the_message_limit(
    supervisor: DynamicSupervisor, pubsub: PubSub, streamer_config: StreamerConfig
) -> None:
    """1,500 workers started back to back: every stream goes live and no connection is closed.

    The mock closes any connection that sends more than 5 messages in a second (pongs to its
    pings every 300 ms included); one such close would show as a second connect.
    """
    limits = Limits(ping_interval=0.3)
    async with MockExchange(MockConfig(port=0, speed=1.0, limits=limits)) as mock:
        async with BinanceRest(mock.rest_url) as rest:
            info = await rest.exchange_info()
        symbols = [s.symbol for s in info.symbols][:1500]
        if len(symbols) < 1500:
            pytest.skip("the mock has no full exchangeInfo (../shared/data/exchange_info)")
        config = replace(
            streamer_config, ws_url=mock.ws_url, streams_per_connection=300, streams_per_message=50
        )
        hub = StreamHub(SpotMarket(config), pubsub)
        runner = asyncio.create_task(hub.run())
        for symbol in symbols:
            await supervisor.start_child(stream_spec(symbol, hub))
        await eventually(lambda: sum(c.live for c in hub.connections()) == 1500, within=60)
        await asyncio.sleep(1.5)
        connections = hub.connections()
        assert len(connections) == 5
        assert all(c.connects == 1 for c in connections)
        assert len(mock.connections) == 5
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


def test_stream_spec_defaults_to_the_hub_registry(make_hub: Callable[..., StreamHub]) -> None:
    """The spec's name is (hub.registry, SYMBOL) and its restart is permanent by default."""
    hub = make_hub()
    spec = stream_spec("ethusdt", hub)
    assert spec.name == (hub.registry, "ETHUSDT")
    assert spec.restart is Restart.PERMANENT


class EmptyHistory:
    """A trade history with nothing in it; records every request."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    async def historical_trades(
        self, symbol: str, from_id: int, limit: int = 1000
    ) -> list[HistoricalTrade]:
        self.calls.append((symbol, from_id))
        return []

    async def recent_trades(self, symbol: str, limit: int = 1000) -> list[HistoricalTrade]:
        return []


@asynccontextmanager
async def scripted(
    symbols: list[str], pubsub: PubSub, **overrides: Any
) -> AsyncIterator[tuple[FakeServer, StreamHub, DynamicSupervisor, list[Child], EmptyHistory]]:
    """Workers of `symbols` on a scripted server, under a default-intensity supervisor."""
    async with FakeServer() as server:
        config = StreamerConfig(
            ws_url=server.url,
            backoff_base=0.05,
            backoff_cap=0.2,
            check_interval=0.05,
            reorder_window=0.05,
            quarantine_base=0.1,
            quarantine_cap=0.3,
            **overrides,
        )
        history = EmptyHistory()
        hub = StreamHub(SpotMarket(config), pubsub, history)
        sup = DynamicSupervisor(name="streamers")
        ready = asyncio.get_running_loop().create_future()
        tasks = [
            asyncio.create_task(hub.run()),
            asyncio.create_task(sup.run(lambda: ready.set_result(None))),
        ]
        await ready
        children = [await sup.start_child(stream_spec(s, hub)) for s in symbols]
        await eventually(lambda: all(server.subscribed(f"{s.lower()}@trade") for s in symbols))
        try:
            yield server, hub, sup, children, history
        finally:
            await sup.stop()
            tasks[0].cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_symbol_fed_bad_frames_is_quarantined_while_its_neighbours_stream(
    pubsub: PubSub,
) -> None:
    """Bad frames park one symbol (quarantined, retried); two healthy ones stream, no restarts."""
    symbols = ["AAAUSDT", "BBBUSDT", "BADUSDT"]
    async with scripted(symbols, pubsub) as (server, hub, sup, children, _):
        counts = dict.fromkeys(symbols, 0)

        async def feed() -> None:
            while True:
                for symbol in symbols[:2]:
                    counts[symbol] += 1
                    server.trade(symbol, counts[symbol])
                server.trade("BADUSDT", 1, price="NaN")
                await asyncio.sleep(0.005)

        feeder = asyncio.create_task(feed())
        try:
            await eventually(lambda: live(hub, "BADUSDT").quarantines >= 2)
            healthy = {s: live(hub, s).trades for s in symbols[:2]}
            await eventually(lambda: all(live(hub, s).trades > healthy[s] + 50 for s in healthy))
        finally:
            feeder.cancel()
        bad = live(hub, "BADUSDT")
        assert bad.rejected["price"] >= 2 * StreamerConfig().validation.quarantine_after
        assert bad.trades == 0
        assert [c.restarts for c in children] == [0, 0, 0]
        assert sup.state is ChildState.RUNNING
        assert all(live(hub, s).state == "streaming" for s in symbols[:2])


async def test_a_first_trade_with_a_negative_id_does_not_crash_loop(pubsub: PubSub) -> None:
    """t = -4 before real trades is dropped: no back-fill from a negative id, no restart."""
    async with scripted(["NEGUSDT"], pubsub) as (server, hub, _, children, history):
        sub = pubsub.subscribe(topic("NEGUSDT"))
        server.trade("NEGUSDT", -4)
        for trade_id in range(1, 6):
            server.trade("NEGUSDT", trade_id)
        await eventually(lambda: live(hub, "NEGUSDT").trades == 5)
        got = [e.trade_id for e in sub.get_nowait_batch() if isinstance(e, TradeEvent)]
        assert got == [1, 2, 3, 4, 5]
        assert live(hub, "NEGUSDT").rejected == {"id_range": 1}
        assert (history.calls, children[0].restarts) == ([], 0)


async def test_an_id_beyond_a_bigint_never_becomes_a_saved_position(pubsub: PubSub) -> None:
    """t = 2^63 is dropped, so the positions the service saves stay within BIGINT."""
    async with scripted(["BIGUSDT"], pubsub) as (server, hub, _, children, _):
        for trade_id in (1, 2, 2**63, 3):
            server.trade("BIGUSDT", trade_id)
        await eventually(lambda: live(hub, "BIGUSDT").trades == 3)
        assert hub.positions() == {"BIGUSDT": 3}
        assert live(hub, "BIGUSDT").rejected == {"id_range": 1}
        assert children[0].restarts == 0


async def test_a_trade_time_beyond_any_calendar_is_dropped(pubsub: PubSub) -> None:
    """T = 3e17 (year ~9.5 million) is dropped; the last trade time stays the real one."""
    async with scripted(["TIMUSDT"], pubsub) as (server, hub, _, _, _):
        server.trade("TIMUSDT", 1, time=1_700_000_000_001)
        server.trade("TIMUSDT", 2, time=300_000_000_000_000_000)
        server.trade("TIMUSDT", 2, time=1_700_000_000_002)
        await eventually(lambda: live(hub, "TIMUSDT").trades == 2)
        stats = live(hub, "TIMUSDT")
        assert (stats.last_trade_time, stats.rejected) == (1_700_000_000_002, {"time_range": 1})
