"""Slow consumers only ever hurt themselves: a fast one gets every event while they are stuck."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from streamer.api import trades
from streamer.events import Event, TradeEvent
from streamer.mock_exchange import MockConfig, MockExchange
from streamer.stream.pubsub import Subscription, topic
from tests.e2e.inprocess import DEADLINE, Running, api, eventually, running_service

EVENTS = 1000
SLOW_CLIENT_QUEUE = 50
"""The service's per-client queue in this test: small, so a stuck client overflows quickly."""


async def read_socket(websocket: ClientConnection, into: list[dict[str, Any]]) -> None:
    """Read as fast as the socket delivers, until cancelled."""
    while True:
        into.append(json.loads(await websocket.recv()))


async def read_subscription(sub: Subscription, into: list[Event]) -> None:
    """Read as fast as the subscription delivers, until cancelled."""
    while True:
        into.extend(await sub.get_batch())


def stuck_socket(port: int) -> socket.socket:
    """A connected socket with a tiny receive buffer, so the server feels a stuck reader at once."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    return sock


def dropped_metric(exposition: str) -> float:
    """The service's count of events dropped by slow subscribers, from its Prometheus text."""
    (line,) = [x for x in exposition.splitlines() if x.startswith("streamer_subscriber_dropped")]
    return float(line.split()[-1])


def contiguous(ids: list[int]) -> bool:
    return ids == list(range(ids[0], ids[0] + len(ids)))


def client_subscription(running: Running) -> Subscription | None:
    """The service's subscription serving the stuck websocket client."""
    for sub in running.service.pubsub.subscriptions():
        if sub.maxlen == SLOW_CLIENT_QUEUE:
            return sub
    return None


def losses(running: Running) -> Subscription | None:
    """The stuck websocket client's subscription, once it has dropped events."""
    sub = client_subscription(running)
    return sub if sub is not None and sub.dropped > 0 else None


@pytest.fixture
def mock_config() -> MockConfig:
    """5,000 trades a second: enough to fill a stuck client's socket buffers within seconds."""
    return MockConfig(port=0, speed=1000.0)


async def test_slow_consumers_do_not_delay_fast_ones(
    sqlite_url: str, mock_exchange: MockExchange, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a websocket client and an in-process subscriber are stuck and losing events, a fast
    client and a fast subscriber get every event in order; the stuck ones' losses are counted."""
    async with running_service(sqlite_url, mock_exchange, ["ETHUSDT"]) as running:
        pubsub = running.service.pubsub
        port = int(running.base_url.rsplit(":", 1)[1])
        url = f"ws://127.0.0.1:{port}/ws/trades?symbols=ETHUSDT"
        await running.until(
            lambda: running.service.registry.lookup("ETHUSDT") is not None, "ETHUSDT streaming"
        )
        with (
            pubsub.subscribe(topic("ETHUSDT"), maxlen=10) as stuck_sub,
            pubsub.subscribe(topic("ETHUSDT")) as fast_sub,
        ):
            async with connect(url, compression=None) as fast:
                fast_messages: list[dict[str, Any]] = []
                fast_events: list[Event] = []
                readers = [
                    asyncio.create_task(read_socket(fast, fast_messages)),
                    asyncio.create_task(read_subscription(fast_sub, fast_events)),
                ]
                with monkeypatch.context() as patch:
                    patch.setattr(trades, "CLIENT_QUEUE", SLOW_CLIENT_QUEUE)
                    stuck = await connect(
                        url, sock=stuck_socket(port), max_queue=1, compression=None
                    )
                    await eventually(lambda: client_subscription(running), "the stuck queue")
                try:
                    stuck_client = await running.until(
                        lambda: losses(running), "losses of the stuck websocket client"
                    )
                    assert stuck_sub.dropped > 0
                    marks = len(fast_messages), len(fast_events)
                    await running.until(
                        lambda: (
                            len(fast_messages) >= marks[0] + EVENTS
                            and len(fast_events) >= marks[1] + EVENTS
                        ),
                        f"{EVENTS} more events to the fast consumers",
                    )
                    assert stuck_client.dropped > 0
                    assert dropped_metric((await api(running, "GET", "/metrics")).text) > 0
                    assert fast_sub.dropped == 0
                    assert {m["kind"] for m in fast_messages} == {"trade"}
                    assert contiguous([m["trade_id"] for m in fast_messages])
                    trade_ids = [e.trade_id for e in fast_events if isinstance(e, TradeEvent)]
                    assert contiguous(trade_ids)

                    async with asyncio.timeout(DEADLINE):
                        while json.loads(await stuck.recv())["kind"] != "dropped":
                            pass
                finally:
                    for reader in readers:
                        reader.cancel()
                    await asyncio.gather(*readers, return_exceptions=True)
                    # Neither client reads any more: cut them rather than wait for close handshakes
                    # queued behind megabytes of trades.
                    stuck.transport.abort()
                    fast.transport.abort()
