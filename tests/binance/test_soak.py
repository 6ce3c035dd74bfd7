"""Soak: many symbols at a high rate, with the mock's faults injected at random for minutes.

Afterwards every symbol's events must account for every trade id exactly once: delivered as a
trade, or announced inside a gap notice. Marked slow (run with `make test-slow`).
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict

import pytest

from streamer.binance.config import StreamerConfig
from streamer.binance.market import SpotMarket
from streamer.events import Dropped, Event, GapNotice, TradeEvent
from streamer.mock_exchange import Limits, MockConfig, MockExchange
from streamer.otp import DynamicSupervisor
from streamer.stream.hub import StreamHub
from streamer.stream.pubsub import PubSub
from streamer.stream.worker import stream_spec
from tests.binance.recorded import require_data

SYMBOLS = [
    "ADAUSDT",
    "BTCPAX",
    "BTCTUSD",
    "BTCUSDC",
    "FETUSDT",
    "MATICUSDT",
    "PAXUSDT",
    "TFUELUSDT",
    "TUSDUSDT",
    "USDCUSDT",
    "WAVESUSDT",
]
SOAK_SECONDS = 120.0


def account(events: list[Event]) -> tuple[int, int, int]:
    """Walk one symbol's events; returns (trades, trades announced lost, gap notices).

    Fails on a duplicate, an id out of order, or a jump that no gap notice explains.
    """
    expected: int | None = None
    trades = lost = notices = 0
    for event in events:
        if isinstance(event, TradeEvent):
            assert expected is None or event.trade_id == expected, (event, expected)
            expected = event.trade_id + 1
            trades += 1
        elif isinstance(event, GapNotice):
            assert expected is None or event.first_missing_id == expected, (event, expected)
            expected = event.last_missing_id + 1
            lost += event.missing
            notices += 1
        else:
            raise AssertionError(f"events were dropped: {event!r}")
    return trades, lost, notices


async def inject_faults(mock: MockExchange, rng: random.Random, until: float) -> list[str]:
    """Switch random faults on (and off again) until the loop time `until`."""
    loop = asyncio.get_running_loop()
    done: list[str] = []
    while loop.time() < until:
        await asyncio.sleep(rng.uniform(0.3, 1.5))
        connections = list(mock.connections)
        fault = rng.choice(
            [
                "drop",
                "stall",
                "malformed",
                "truncated",
                "shutdown",
                "skip",
                "skip",
                "duplicate",
                "refuse",
                "slow_rest",
            ]
        )
        done.append(fault)
        if fault in ("drop", "stall", "malformed", "truncated", "shutdown") and not connections:
            continue
        target = rng.choice(connections) if connections else None
        if fault == "drop":
            mock.faults.drop(target)
        elif fault == "stall":
            mock.faults.stall(target)
            await asyncio.sleep(rng.uniform(0.5, 2.0))
            mock.faults.resume()
        elif fault == "malformed":
            mock.faults.malformed_frame(target)
        elif fault == "truncated":
            mock.faults.truncated_frame(target)
        elif fault == "shutdown":
            mock.faults.server_shutdown(target, close_after=0.5)
        elif fault == "skip":
            mock.faults.skip_ids(rng.choice(SYMBOLS), rng.randint(1, 50))
        elif fault == "duplicate":
            mock.faults.duplicate_ids(rng.choice(SYMBOLS), rng.randint(1, 20))
        elif fault == "refuse":
            mock.faults.refuse(rng.choice([429, 418]), retry_after=1)
            await asyncio.sleep(rng.uniform(0.2, 1.5))
            await mock.faults.accept()
        else:
            mock.faults.slow_rest(0.3)
            await asyncio.sleep(rng.uniform(0.5, 2.0))
            mock.faults.slow_rest(0)
    await mock.faults.accept()
    mock.faults.resume()
    mock.faults.slow_rest(0)
    return done


@pytest.mark.slow
@pytest.mark.timeout(SOAK_SECONDS + 120)
async def test_soak_every_trade_delivered_once_or_reported() -> None:
    """Under minutes of random faults no trade is duplicated, reordered or silently lost."""
    require_data()
    limits = Limits(ping_interval=1.0, pong_timeout=5.0, lifetime=20.0)
    async with MockExchange(MockConfig(port=0, speed=300.0, limits=limits)) as mock:
        pubsub = PubSub()
        sub = pubsub.subscribe(maxlen=10_000_000)
        config = StreamerConfig(
            ws_url=mock.ws_url,
            rest_url=mock.rest_url,
            streams_per_connection=4,
            backoff_base=0.05,
            backoff_cap=0.5,
            check_interval=0.1,
            dead_after=1.0,
            rotate_after=8.0,
            reorder_window=0.1,
            handshake_timeout=2.0,
        )
        hub = StreamHub(SpotMarket(config), pubsub)
        supervisor = DynamicSupervisor(max_restarts=1000, max_seconds=1.0)
        ready = asyncio.get_running_loop().create_future()
        tasks = [
            asyncio.create_task(hub.run()),
            asyncio.create_task(supervisor.run(lambda: ready.set_result(None))),
        ]
        await ready
        for symbol in SYMBOLS:
            await supervisor.start_child(stream_spec(symbol, hub))
        loop = asyncio.get_running_loop()
        faults = await inject_faults(mock, random.Random(7), loop.time() + SOAK_SECONDS)
        await asyncio.sleep(5.0)
        await supervisor.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    by_symbol: dict[str, list[Event]] = defaultdict(list)
    for event in sub.get_nowait_batch():
        assert not isinstance(event, Dropped), event
        by_symbol[event.symbol].append(event)
    assert sub.dropped == 0
    assert set(by_symbol) == set(SYMBOLS)
    totals = [account(events) for events in by_symbol.values()]
    trades = sum(t for t, _, _ in totals)
    lost = sum(lost for _, lost, _ in totals)
    assert trades > 10_000
    assert lost < trades / 100, (faults, totals)
