"""Trades out of the process through real brokers: every trade of a mock run reaches an
independent consumer exactly once and in order per symbol, or is announced lost in a gap notice,
across restarts, broker outages and a stalled broker (`kill -9`: `test_journal.py`).

Each test publishes into a NATS stream or Redis key prefix of its own, on the shared servers;
outages are a relay in front of the server that the test stops, stalls and starts again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from streamer.events import TradeEvent
from streamer.mock_exchange import MockExchange
from streamer.sinks.runner import SinkRunner, SinkState
from streamer.stream.pubsub import topic
from tests.e2e.inprocess import Running, api, running_service
from tests.fixtures.brokers import NatsTarget, RedisTarget
from tests.fixtures.mock_exchange import fast_streamer_config
from tests.fixtures.relay import Relay, relay_to, through
from tests.ports import closed_port
from tests.sinks.consumers import Received, read_nats, read_redis

PAIR = ("ETHUSDT", "NEOUSDT")
OUTAGE = 10.0
"""Seconds the broker stays away in the outage test, as long as a broker restart may take."""

Target = NatsTarget | RedisTarget


@pytest.fixture(params=["nats", "redis"])
def target(request: pytest.FixtureRequest) -> Target:
    """A stream (NATS) or key prefix (Redis) of this test's own on the real server."""
    fixture: Target = request.getfixturevalue(f"{request.param}_target")
    return fixture


@pytest.fixture
async def relay(target: Target) -> AsyncIterator[Relay]:
    async with relay_to(target.server) as running:
        yield running


async def read_back(target: Target) -> dict[str, Received]:
    return await (read_nats(target) if isinstance(target, NatsTarget) else read_redis(target))


def the_runner(running: Running) -> SinkRunner:
    [runner] = running.service.sinks.runners
    return runner


async def published_more(running: Running, count: int) -> None:
    """Wait until the broker confirmed `count` more trades."""
    runner = the_runner(running)
    goal = runner.published + count
    await running.until(lambda: runner.published >= goal, f"{count} more trades at the broker")


def assert_every_trade_once_in_order(received: dict[str, Received], *, gaps: bool) -> None:
    assert set(received) == set(PAIR)
    for symbol in PAIR:
        received[symbol].assert_exactly_once_in_order()
        assert bool(received[symbol].gaps) is gaps, received[symbol].gaps


async def test_every_trade_reaches_the_broker_once_in_order_across_a_restart(
    sqlite_url: str, mock_exchange: MockExchange, target: Target
) -> None:
    """Stopped and started again, the service resumes where the broker stopped: the consumer
    reads every trade once, in order, with nothing missing."""
    url = target.sink_url()
    async with running_service(sqlite_url, mock_exchange, PAIR, sinks=[url]) as running:
        await published_more(running, 300)
    async with running_service(
        sqlite_url, mock_exchange, PAIR, sinks=[url], prepare=False
    ) as running:
        await published_more(running, 300)
    received = await read_back(target)
    assert_every_trade_once_in_order(received, gaps=False)


@pytest.mark.parametrize("required", [False, True], ids=["optional", "required"])
async def test_the_service_streams_while_a_broker_is_down_from_the_start(
    sqlite_url: str, mock_exchange: MockExchange, target: Target, required: bool
) -> None:
    """With its broker unreachable from the start, the service starts and streams to in-process
    subscribers, `/api/health` names the sink as unhealthy, and readiness fails only when the
    user made sinks required."""
    parts = urlsplit(target.server)
    down = urlunsplit((parts.scheme, f"127.0.0.1:{closed_port()}", parts.path, "", ""))
    url = target.sink_url(down, retry_cap=0.2)
    async with running_service(
        sqlite_url, mock_exchange, PAIR, sinks=[url], sink_required=required
    ) as running:
        await running.until(lambda: len(running.service.registry) == 2, "both workers")
        await running.trades_advance(PAIR)
        runner = the_runner(running)
        await running.until(lambda: runner.state is SinkState.RETRYING, "the sink retrying")
        response = await api(running, "GET", "/api/health")
        await running.trades_advance(PAIR)
    [sink] = response.json()["sinks"]
    assert sink["healthy"] is False
    assert sink["required"] is required
    assert sink["last_error"]
    assert response.status_code == (503 if required else 200)
    assert response.json()["ready"] is not required


async def test_a_broker_outage_is_reported_and_loses_nothing(
    sqlite_url: str, mock_exchange: MockExchange, target: Target, relay: Relay
) -> None:
    """While the broker is away for ten seconds the service streams on and health reports the
    sink degraded; once it is back the consumer finds every trade, and no gap notice."""
    url = target.sink_url(through(target.server, relay), retry_cap=0.5, timeout=1)
    async with running_service(sqlite_url, mock_exchange, PAIR, sinks=[url]) as running:
        runner = the_runner(running)
        await published_more(running, 200)
        await relay.stop()
        await running.until(lambda: runner.state is SinkState.RETRYING, "the sink retrying")
        health = (await api(running, "GET", "/api/health")).json()
        assert health["ready"] is True
        assert health["sinks"][0]["healthy"] is False
        assert health["sinks"][0]["degraded"]
        published = runner.published
        await asyncio.sleep(OUTAGE)
        await running.trades_advance(PAIR)
        assert runner.published == published
        lag = runner.stats().lag
        await relay.start()
        await running.until(lambda: runner.state is SinkState.UP, "the sink up again")
        await published_more(running, lag + 200)
        stats = runner.stats()
        metrics = (await api(running, "GET", "/metrics")).text
    assert lag > 0
    assert stats.lost == 0
    assert re.search(r"streamer_sink_lost_total\{sink=\"[^\"]+\"\} 0", metrics)
    received = await read_back(target)
    assert_every_trade_once_in_order(received, gaps=False)


async def test_trades_the_exchange_withheld_arrive_as_gap_notices(
    sqlite_url: str, mock_exchange: MockExchange, target: Target
) -> None:
    """Trades the exchange never sent and the history could not give in time reach the broker's
    consumer as a gap notice naming exactly those ids."""
    config = dataclasses.replace(fast_streamer_config(mock_exchange), gap_deadline=0.3)
    async with running_service(
        sqlite_url, mock_exchange, ["ETHUSDT"], sinks=[target.sink_url()], streamer_config=config
    ) as running:
        await published_more(running, 100)
        mock_exchange.faults.slow_rest(30.0)
        withheld = mock_exchange.faults.skip_ids("ETHUSDT", 5)
        runner = the_runner(running)
        await running.until(
            lambda: runner.durable.get("ETHUSDT", 0) > withheld[-1], "trades after the withheld"
        )
        mock_exchange.faults.slow_rest(0.0)
    received = (await read_back(target))["ETHUSDT"]
    received.assert_exactly_once_in_order()
    assert not set(withheld) & set(received.trades)
    assert any(first <= withheld[0] and withheld[-1] <= last for first, last in received.gaps)


async def test_a_stalled_broker_does_not_delay_an_in_process_subscriber(
    sqlite_url: str, mock_exchange: MockExchange, target: Target, relay: Relay
) -> None:
    """While the broker answers nothing, an in-process subscriber keeps receiving live trades;
    afterwards the broker catches up with every one of them."""
    url = target.sink_url(through(target.server, relay), retry_cap=0.5, timeout=1)
    async with running_service(sqlite_url, mock_exchange, PAIR, sinks=[url]) as running:
        runner = the_runner(running)
        await published_more(running, 100)
        with running.service.pubsub.subscribe([topic(s) for s in PAIR]) as subscriber:
            relay.stall()
            await running.trades_advance(PAIR)
            await running.trades_advance(PAIR)
            during = [e for e in subscriber.get_nowait_batch() if isinstance(e, TradeEvent)]
            confirmed = dict(runner.durable)
            for symbol in PAIR:
                newest = max(e.trade_id for e in during if e.symbol == symbol)
                assert newest > confirmed[symbol], f"{symbol}: nothing beyond the broker"
            relay.resume()
            last = {e.symbol: e.trade_id for e in during}
            await running.until(
                lambda: all(runner.durable.get(s, 0) >= last[s] for s in PAIR),
                "the broker caught up",
            )
    received = await read_back(target)
    assert_every_trade_once_in_order(received, gaps=False)
    for event in during:
        assert event.trade_id in received[event.symbol].trades
