"""Tests for streamer.stream.hub against the mock exchange."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from streamer.binance.config import StreamerConfig
from streamer.binance.market import SpotMarket
from streamer.events import TradeEvent
from streamer.mock_exchange import MockExchange
from streamer.stream.hub import AlreadyAttached, StreamHub
from streamer.stream.pubsub import PubSub, topic
from streamer.stream.worker import run_symbol
from tests.binance.fakeserver import FakeServer
from tests.binance.live import live
from tests.polling import eventually

SYMBOLS = ["ADAUSDT", "BTCPAX", "BTCTUSD", "BTCUSDC", "FETUSDT", "MATICUSDT", "PAXUSDT"]


async def test_symbols_are_packed_onto_connections_up_to_the_cap(
    make_hub: Callable[..., StreamHub], running: Callable[[StreamHub], StreamHub]
) -> None:
    """Seven symbols with three streams per connection use three connections, all streaming."""
    hub = running(make_hub(streams_per_connection=3))
    for symbol in SYMBOLS:
        hub.attach(symbol)
    await eventually(lambda: all(s.state == "streaming" for s in hub.all_stats().values()))
    assert sorted(c.streams for c in hub.connections()) == [1, 3, 3]


async def test_trades_flow_to_subscribers_with_live_stats(hub: StreamHub, pubsub: PubSub) -> None:
    """Trades of an attached symbol reach its topic in id order and show in its stats."""
    sub = pubsub.subscribe(topic("ADAUSDT"))
    hub.attach("ADAUSDT")
    received: list[TradeEvent] = []

    async def collect() -> None:
        while len(received) < 50:
            received.extend(e for e in await sub.get_batch() if isinstance(e, TradeEvent))

    await asyncio.wait_for(collect(), 20)
    got = [e.trade_id for e in received]
    assert got == list(range(got[0], got[0] + len(got)))
    await eventually(lambda: live(hub, "ADAUSDT").rate > 0)
    stats = hub.stats("ADAUSDT")
    assert stats is not None
    assert stats.state == "streaming"
    assert (stats.last_trade_id or 0) >= got[-1]


async def test_a_symbol_is_attached_once(hub: StreamHub) -> None:
    """Attaching a symbol that is already streaming is refused."""
    hub.attach("ADAUSDT")
    with pytest.raises(AlreadyAttached):
        hub.attach("ADAUSDT")


async def test_detach_unsubscribes_and_leaves_stopped_stats(
    hub: StreamHub, mock_exchange: MockExchange
) -> None:
    """Detaching sends UNSUBSCRIBE on the live connection and keeps the stats as stopped."""
    hub.attach("ADAUSDT")
    hub.attach("BTCPAX")
    await eventually(lambda: len(mock_exchange.connections) == 1)
    (server_side,) = mock_exchange.connections.values()
    await eventually(lambda: live(hub, "BTCPAX").state == "streaming")
    hub.detach("BTCPAX")
    await eventually(lambda: list(server_side.session.streams) == ["adausdt@trade"])
    stats = hub.stats("BTCPAX")
    assert stats is not None
    assert stats.state == "stopped"


async def test_dropped_connection_reconnects_only_its_own_symbols(
    make_hub: Callable[..., StreamHub],
    running: Callable[[StreamHub], StreamHub],
    mock_exchange: MockExchange,
) -> None:
    """Cutting one connection reconnects that connection alone, with its own streams."""
    hub = running(make_hub(streams_per_connection=2))
    for symbol in SYMBOLS[:4]:
        hub.attach(symbol)
    await eventually(lambda: all(c.status == "connected" for c in hub.connections()))
    victim = next(
        c for c in mock_exchange.connections.values() if "adausdt@trade" in c.session.streams
    )
    mock_exchange.faults.drop(victim.number)
    await eventually(lambda: sum(c.connects for c in hub.connections()) == 3)
    await eventually(lambda: all(c.status == "connected" for c in hub.connections()))
    by_name = {c.name: c.connects for c in hub.connections()}
    cut, kept = live(hub, "ADAUSDT").connection, live(hub, "BTCUSDC").connection
    assert cut is not None
    assert kept is not None
    assert by_name[cut] == 2
    assert by_name[kept] == 1


async def test_a_restarted_hub_carries_its_attached_symbols_on_without_loss(
    make_hub: Callable[..., StreamHub], pubsub: PubSub
) -> None:
    """A stopped hub closes its sockets; run again, it reconnects and back-fills its symbols."""
    hub = make_hub()
    sub = pubsub.subscribe(topic("ADAUSDT"))
    worker = asyncio.create_task(run_symbol(hub, "ADAUSDT", lambda: None))
    task = asyncio.create_task(hub.run())
    await eventually(lambda: hub.channel("ADAUSDT") is not None)
    channel = hub.channel("ADAUSDT")
    assert channel is not None
    await eventually(lambda: channel.trades > 10)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert hub.connections() == []
    assert channel.state == "connecting"
    before = channel.trades
    task = asyncio.create_task(hub.run())
    await eventually(lambda: channel.trades > before + 10)
    assert channel.state == "streaming"
    for running_task in (worker, task):
        running_task.cancel()
    await asyncio.gather(worker, task, return_exceptions=True)
    events = sub.get_nowait_batch()
    assert all(isinstance(e, TradeEvent) for e in events)
    ids = [e.trade_id for e in events if isinstance(e, TradeEvent)]
    assert ids == list(range(ids[0], ids[0] + len(ids)))


@dataclass(frozen=True)
class Row:
    id: int
    price: Decimal = Decimal(1)
    qty: Decimal = Decimal(1)
    time: int = 1_700_000_000_000
    is_buyer_maker: bool = False


class Market:
    """What the exchange says when asked why a symbol is silent: its latest trade and status."""

    def __init__(self, latest: int | None = None, status: str = "TRADING") -> None:
        self.latest = latest
        self.status = status
        self.asked: list[str] = []

    async def historical_trades(self, symbol: str, from_id: int, limit: int = 1000) -> list[Row]:
        return []

    async def recent_trades(self, symbol: str, limit: int = 1000) -> list[Row]:
        self.asked.append(f"trades {symbol}")
        return [] if self.latest is None else [Row(self.latest)]

    async def symbol_status(self, symbol: str) -> str:
        self.asked.append(f"status {symbol}")
        return self.status


async def test_silent_symbol_is_resubscribed_and_a_busy_one_is_not() -> None:
    """A symbol silent far beyond its rhythm gets UNSUBSCRIBE+SUBSCRIBE; a trading one does not."""
    async with FakeServer() as server:
        config = StreamerConfig(ws_url=server.url, check_interval=0.05, stale_min=0.3)
        hub = StreamHub(SpotMarket(config), PubSub(), Market())
        runner = asyncio.create_task(hub.run())
        hub.attach("AAA")
        hub.attach("BBB")
        await eventually(lambda: len(server.clients) == 1)

        async def busy() -> None:
            trade_id = 1
            while True:
                server.trade("BBB", trade_id)
                trade_id += 1
                await asyncio.sleep(0.02)

        feeder = asyncio.create_task(busy())
        client = server.clients[0]

        def requests() -> list[dict[str, Any]]:
            return [msgspec.json.decode(raw) for raw in client.received]

        await eventually(
            lambda: (
                [(r["method"], r["params"]) for r in requests()][:2]
                == [("UNSUBSCRIBE", ["aaa@trade"]), ("SUBSCRIBE", ["aaa@trade"])]
            )
        )
        assert all("bbb@trade" not in r["params"] for r in requests())
        feeder.cancel()
        runner.cancel()
        await asyncio.gather(feeder, runner, return_exceptions=True)


async def test_a_symbol_detached_for_any_reason_resumes_from_its_last_trade(
    hub: StreamHub,
) -> None:
    """Re-attaching after a detach continues from its last trade id, so nothing is skipped."""
    hub.attach("ADAUSDT")
    await eventually(lambda: live(hub, "ADAUSDT").last_trade_id is not None)
    hub.detach("ADAUSDT")
    last = live(hub, "ADAUSDT").last_trade_id

    assert hub.attach("ADAUSDT").last_id == last


async def test_a_forgotten_symbol_starts_afresh(hub: StreamHub) -> None:
    """After `forget`, the next attach has no resume point: a stopped symbol is not back-filled."""
    hub.attach("ADAUSDT")
    await eventually(lambda: live(hub, "ADAUSDT").last_trade_id is not None)
    hub.detach("ADAUSDT")

    hub.forget("ADAUSDT")

    assert hub.attach("ADAUSDT").last_id is None


async def test_positions_cover_attached_symbols_and_kept_resume_points(hub: StreamHub) -> None:
    """`positions` holds the last id of attached symbols and of detached ones that resume."""
    hub.attach("ADAUSDT")
    hub.attach("BTCPAX")
    await eventually(lambda: len(hub.positions()) == 2)
    hub.detach("BTCPAX")
    stopped_at = live(hub, "BTCPAX").last_trade_id
    positions = hub.positions()
    channel = hub.channel("ADAUSDT")
    assert channel is not None
    assert positions["BTCPAX"] == stopped_at
    assert channel.last_id is not None
    assert positions["ADAUSDT"] <= channel.last_id
    hub.forget("BTCPAX")
    assert set(hub.positions()) == {"ADAUSDT"}


async def test_resume_from_back_fills_from_the_seeded_trade(
    make_hub: Callable[..., StreamHub],
    running: Callable[[StreamHub], StreamHub],
    pubsub: PubSub,
) -> None:
    """A symbol seeded with `resume_from` starts with the back-filled trades after that id."""
    first = running(make_hub())
    first.attach("ADAUSDT")
    await eventually(lambda: live(first, "ADAUSDT").trades > 40)
    seen = first.positions()["ADAUSDT"]
    first.detach("ADAUSDT")
    hub = running(make_hub())
    hub.resume_from(" adausdt ", seen - 30)
    sub = pubsub.subscribe(topic("ADAUSDT"))
    worker = asyncio.create_task(run_symbol(hub, "ADAUSDT", lambda: None))
    await eventually(lambda: live(hub, "ADAUSDT").gaps_filled >= 1)
    worker.cancel()
    await asyncio.gather(worker, return_exceptions=True)
    events = [e for e in sub.get_nowait_batch() if isinstance(e, TradeEvent)]
    assert events[0].trade_id == seen - 29
    assert events[0].backfilled
    ids = [e.trade_id for e in events]
    assert ids == list(range(ids[0], ids[0] + len(ids)))


def test_a_resume_never_starts_before_what_the_process_already_holds(
    make_hub: Callable[..., StreamHub],
) -> None:
    """With a floor (the journal's last trade), an older saved position resumes from the
    floor instead, and a newer one is kept."""
    hub = make_hub()
    hub.resume_floor = {"ADAUSDT": 500}.get
    hub.resume_from("ADAUSDT", 100)
    hub.resume_from("ETHUSDT", 100)
    assert hub.positions() == {"ADAUSDT": 500, "ETHUSDT": 100}
    hub.resume_from("ADAUSDT", 900)
    assert hub.positions()["ADAUSDT"] == 900


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_staleness_follows_the_rhythm_since_attach_on_the_hub_clock() -> None:
    """10 trades in the 100 s since attach make 10 s of silence normal and 110 s stale."""
    clock = FakeClock()
    async with FakeServer() as server:
        config = StreamerConfig(
            ws_url=server.url,
            check_interval=0.02,
            stale_factor=2.0,
            stale_min=1.0,
            dead_after=10_000.0,
        )
        hub = StreamHub(SpotMarket(config), PubSub(), Market(latest=10), clock=clock)
        runner = asyncio.create_task(hub.run())
        channel = hub.attach("AAA")
        await eventually(lambda: channel.state == "streaming")
        (client,) = server.clients

        def methods() -> list[str]:
            return [msgspec.json.decode(raw)["method"] for raw in client.received]

        def ticked() -> bool:
            return hub._last_tick == clock.now and channel.checked_trades == channel.trades

        server.trade("AAA", 1)
        await eventually(lambda: channel.trades == 1 and ticked())
        clock.now += 90.0
        for trade_id in range(2, 11):
            server.trade("AAA", trade_id)
        await eventually(lambda: channel.trades == 10 and ticked())
        clock.now += 10.0
        await eventually(ticked)
        assert methods() == []
        clock.now += 100.0
        await eventually(lambda: methods() == ["UNSUBSCRIBE", "SUBSCRIBE"])
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


@pytest.mark.parametrize(
    ("market", "state", "reason"),
    [
        (Market(latest=500), "stalled", "traded up to id 500"),
        (Market(latest=3, status="HALT"), "halted", "HALT"),
        (Market(latest=3, status="TRADING"), "streaming", None),
    ],
)
async def test_a_silent_symbol_is_told_apart_from_a_quiet_market(
    market: Market, state: str, reason: str | None
) -> None:
    """Silence with newer trades on the exchange is `stalled`, with a non-TRADING status
    `halted`, and with neither a quiet market; trades arriving again mean `streaming`."""
    async with FakeServer() as server:
        config = StreamerConfig(
            ws_url=server.url, check_interval=0.05, stale_min=0.3, stale_factor=0.5
        )
        hub = StreamHub(SpotMarket(config), PubSub(), market)
        runner = asyncio.create_task(hub.run())
        hub.attach("AAA")
        await eventually(lambda: bool(server.subscribed("aaa@trade")))
        for trade_id in (1, 2, 3):
            server.trade("AAA", trade_id)
        await eventually(lambda: live(hub, "AAA").trades == 3)
        await eventually(lambda: len(market.asked) >= (1 if state == "stalled" else 2))
        await eventually(lambda: live(hub, "AAA").state == state)
        assert reason is None or reason in (live(hub, "AAA").reason or "")
        await eventually(lambda: bool(server.subscribed("aaa@trade")))
        server.trade("AAA", 4)
        await eventually(lambda: live(hub, "AAA").state == "streaming")
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
