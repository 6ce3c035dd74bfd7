"""Sink figures: trades/s into NATS JetStream and Redis Streams, cryptofeed's Redis backend on
the same trades, CPU per million trades, and the latency from the socket to a broker consumer.

`sink` mode (a fresh process, like every client of `bench.client`) streams the benchmark symbol
from the mock (`--speed max`) through the service's real path: StreamHub -> pub/sub -> the sink
runner's own subscription -> `NatsSink` / `RedisSink` -> the broker on 127.0.0.1. The clock starts
at the first trade the broker confirmed and stops once `--frames` more are confirmed; a separate
client then counts what the broker holds (JetStream's stream state, Redis's XLEN), and the run
fails unless that count covers every trade measured.

`latency` mode streams from a mock paced at about 10,000 trades/s and stamps each trade as the
stream hands it to pub/sub, straight from the socket read that decoded it; a consumer of the
broker in the same process (a JetStream ordered consumer, a blocking XREAD) stamps it again on
arrival. The figures are the percentiles of the difference, after a one-second warm-up.

`peer_cryptofeed_redis_per_s` runs cryptofeed's own Redis Streams backend (`TradeStream`) in its
Binance feed on the same frames, in its own virtualenv under bench/.peers/, and counts the
entries reaching its Redis stream the same way.

`python -m bench.sinks` runs this piece alone and updates its rows in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, cast

import msgspec
import nats
import redis.asyncio as aioredis
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy

from bench.client import SYMBOL
from bench.journaled import journaled
from bench.mock_process import FULL_SPEED, only_symbols
from bench.mock_process import mock_exchange as mock_process
from bench.peers.common import MOCK_PID, Clock
from bench.recording import CSV_ROWS, update_doc
from streamer.binance.config import StreamerConfig
from streamer.binance.market import SpotMarket
from streamer.events import Event, TradeEvent
from streamer.sinks.nats import MSG_ID
from streamer.sinks.runner import SinkRunner
from streamer.sinks.urls import sink_from_url
from streamer.stream.hub import StreamHub
from streamer.stream.pubsub import PubSub, Route

FRAMES = 200_000
ROUNDS = 2
POLL = 0.005
LATENCY_RATE = 10_000
GENTLE_RATE = 1_000
"""A second, gentler pace: the path's own latency when nothing queues up on a busy machine."""
LATENCY_SECONDS = 8.0
WARM_UP = 1.0
NATS = os.environ.get("STREAMER_TEST_NATS_URL") or "nats://127.0.0.1:4222"
REDIS = os.environ.get("STREAMER_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"
MOCK_URL = "<mock-url>"
PEER = "cryptofeed_redis"
PEER_REQUIREMENT = "cryptofeed[redis]"
PEER_SCRIPT = "cryptofeed_redis.py"


def target_url(broker: str, name: str) -> str:
    """A sink URL publishing into a stream or key prefix of this run's own."""
    if broker == "nats":
        return f"{NATS}?stream={name.upper()}&prefix={name}&max_age=600&storage=memory"
    return f"{REDIS}?prefix={name}&maxlen=0"


async def broker_count(broker: str, name: str) -> int:
    """How many trades of the benchmark symbol the broker holds, read by a separate client."""
    if broker == "nats":
        client = await nats.connect(NATS)
        try:
            info = await client.jetstream().stream_info(name.upper())
            return int(info.state.messages)
        finally:
            await client.close()
    redis = aioredis.Redis.from_url(REDIS)
    try:
        return int(await redis.xlen(f"{name}:trades:{SYMBOL}"))
    finally:
        await redis.aclose()


async def forget(broker: str, name: str) -> None:
    """Remove the run's stream or keys from the shared server."""
    if broker == "nats":
        client = await nats.connect(NATS)
        try:
            await client.jetstream().delete_stream(name.upper())
        finally:
            await client.close()
        return
    redis = aioredis.Redis.from_url(REDIS)
    try:
        keys = [key async for key in redis.scan_iter(f"{name}:*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


@contextlib.asynccontextmanager
async def start(
    url: str, broker: str, name: str, pubsub: PubSub
) -> AsyncIterator[tuple[SinkRunner, list[Any]]]:
    """The benchmark symbol streaming into the broker through the journal, as `run` does."""
    sink, _ = sink_from_url(target_url(broker, name))
    with tempfile.TemporaryDirectory(prefix="bench-journal-") as folder:
        async with journaled(sink, pubsub, Path(folder)) as runner:
            hub = StreamHub(SpotMarket(StreamerConfig(ws_url=url)), pubsub)
            tasks = [asyncio.create_task(hub.run())]
            hub.attach(SYMBOL)
            try:
                yield runner, tasks
            finally:
                await stop(tasks)


def dropped(runner: SinkRunner) -> int:
    """Trades the runner announced or the journal's budget took: none, in a good run."""
    cursor = runner.cursor
    return runner.lost + (cursor.lost_total if cursor is not None else 0)


async def stop(tasks: list[Any]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def run_sink(url: str, broker: str, total: int) -> dict[str, float]:
    name = f"bench{secrets.token_hex(4)}"
    try:
        async with start(url, broker, name, PubSub()) as (runner, tasks):
            while SYMBOL not in runner.durable:  # noqa: ASYNC110 - the runner announces nothing
                await asyncio.sleep(POLL)
            first = runner.durable[SYMBOL]
            started = Clock()
            while runner.durable[SYMBOL] < first + total:  # noqa: ASYNC110 - as above
                await asyncio.sleep(POLL)
            end = Clock()
            await stop(tasks)
            lost = dropped(runner)
        counted = await broker_count(broker, name)
        if counted < total:
            raise SystemExit(f"the broker holds {counted} trades, fewer than {total} measured")
        return {**end.since(started, total), "dropped": lost, "held": counted}
    finally:
        await forget(broker, name)


class StampingRoute(Route):
    """A topic's route that notes when each trade left the socket read that decoded it."""

    __slots__ = ("stamps",)

    def __init__(self, route: Route, stamps: dict[int, float]) -> None:
        super().__init__(route.name, route.subscriptions, route.tap)
        self.stamps = stamps

    def publish_batch(self, events: Sequence[Event]) -> None:
        now = time.perf_counter()
        for event in events:
            if isinstance(event, TradeEvent):
                self.stamps[event.trade_id] = now
        super().publish_batch(events)


class StampingPubSub(PubSub):
    """Pub/sub whose routes stamp trades as the stream hands them over."""

    def __init__(self) -> None:
        super().__init__()
        self.stamps: dict[int, float] = {}

    def route(self, name: str) -> Route:
        route = super().route(name)
        if not isinstance(route, StampingRoute):
            route = self._routes[name] = StampingRoute(route, self.stamps)
        return route


async def consume(broker: str, name: str, arrived: dict[int, float]) -> Callable[[], Any]:
    """Start a consumer of the run's stream that notes when each trade arrives; returns its
    stopper."""
    if broker == "nats":
        client = await nats.connect(NATS)

        async def on_message(message: Msg) -> None:
            message_id = (message.headers or {})[MSG_ID]  # `<SYMBOL>:<trade_id>`
            arrived[int(message_id.rsplit(":", 1)[1])] = time.perf_counter()

        js = client.jetstream()
        while True:
            try:
                await js.stream_info(name.upper())
                break
            except nats.js.errors.NotFoundError:
                await asyncio.sleep(POLL)
        await js.subscribe(
            f"{name}.trades.{SYMBOL}",
            cb=on_message,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.NEW,
        )
        return client.close
    redis = aioredis.Redis.from_url(REDIS)

    async def read() -> None:
        key, last = f"{name}:trades:{SYMBOL}", "$"
        while True:
            replies = cast(list[Any], await redis.xread({key: last}, block=1000) or [])
            now = time.perf_counter()
            for _, entries in replies:
                for entry_id, _fields in entries:
                    last = entry_id.decode()
                    arrived[int(last.split("-", 1)[0])] = now

    reading = asyncio.create_task(read())

    async def close() -> None:
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
        await redis.aclose()

    return close


async def run_latency(url: str, broker: str, seconds: float) -> dict[str, float]:
    name = f"bench{secrets.token_hex(4)}"
    pubsub = StampingPubSub()
    arrived: dict[int, float] = {}
    close = None
    try:
        async with start(url, broker, name, pubsub) as (runner, tasks):
            close = await consume(broker, name, arrived)
            began = time.perf_counter()
            await asyncio.sleep(seconds)
            await stop(tasks)
            await asyncio.sleep(0.5)
            lost = dropped(runner)
        delays = sorted(
            (arrived[i] - stamp) * 1000
            for i, stamp in pubsub.stamps.items()
            if i in arrived and stamp > began + WARM_UP
        )
        measured = sum(1 for stamp in pubsub.stamps.values() if stamp > began + WARM_UP)
        cuts = statistics.quantiles(delays, n=100)
        return {
            "p50": cuts[49],
            "p99": cuts[98],
            "count": len(delays),
            "missing": measured - len(delays),
            "rate": measured / (seconds - WARM_UP),
            "dropped": lost,
        }
    finally:
        if close is not None:
            await close()
        await forget(broker, name)


Runs = Callable[..., dict[str, Any] | None]
"""`bench.__main__.best_of`: the best of some client runs, each against a fresh mock."""


def paced(command: Sequence[str], rate: int = LATENCY_RATE) -> dict[str, Any] | None:
    """One run of `command` against a mock paced at about `rate` trades/s."""
    from bench.__main__ import run_json

    speed = rate * 86_400 / CSV_ROWS  # the recorded day's trades, spread evenly
    limits = [flag for flag in FULL_SPEED if not flag.startswith("--speed")]
    with (
        only_symbols(SYMBOL) as data,
        mock_process(f"--speed={speed:.0f}", *limits, f"--data-dir={data}") as mock,
    ):
        env = {**os.environ, MOCK_PID: str(mock.pid)}
        return run_json([mock.ws_url if part == MOCK_URL else part for part in command], env=env)


def peer_command(python: Path) -> list[str]:
    from bench.mock_process import EXCHANGE_INFO

    name = f"benchcf{secrets.token_hex(4)}"
    info = str(EXCHANGE_INFO)
    return [str(python), PEER_SCRIPT, MOCK_URL, str(FRAMES), SYMBOL, info, REDIS, name]


def figures(best_of: Runs) -> dict[str, float | str]:
    """Every sink figure of one run."""
    from bench.__main__ import PEER_SCRIPTS, Peer, peer_python

    out: dict[str, float | str] = {}
    module = [sys.executable, "-m", "bench.sinks"]
    rates: dict[str, float] = {}
    for broker in ("nats", "redis"):
        command = [*module, "sink", broker, "--url", MOCK_URL, "--frames", str(FRAMES)]
        result = best_of(command, ROUNDS)
        if result is None:
            out[f"sink_{broker}_per_s"] = "failed"
            continue
        rates[broker] = result["rate"]
        out[f"sink_{broker}_per_s"] = round(result["rate"])
        out[f"sink_{broker}_cpu_s_per_million"] = round(result["cpu_s"] / result["count"] * 1e6, 2)
        out[f"sink_{broker}_dropped"] = int(result["dropped"])
    python = peer_python(Peer(PEER, PEER_REQUIREMENT, PEER_SCRIPT, ""))
    peer = None if python is None else best_of(peer_command(python), ROUNDS, PEER_SCRIPTS)
    if peer is None:
        out["peer_cryptofeed_redis_per_s"] = "failed"
    else:
        out["peer_cryptofeed_redis_per_s"] = round(peer["rate"])
        out["peer_cryptofeed_redis_cpu_s_per_million"] = round(
            peer["cpu_s"] / peer["count"] * 1e6, 2
        )
        if "redis" in rates:
            out["sink_redis_vs_cryptofeed"] = round(rates["redis"] / peer["rate"], 2)
    for rate, tag in ((LATENCY_RATE, ""), (GENTLE_RATE, "_1k")):
        for broker in ("nats", "redis"):
            name = f"latency{tag}_{broker}"
            command = [*module, "latency", broker, "--url", MOCK_URL]
            result = paced([*command, "--seconds", str(LATENCY_SECONDS)], rate)
            if result is None:
                out[f"{name}_ms_p50"] = "failed"
                continue
            out[f"{name}_ms_p50"] = round(result["p50"], 2)
            out[f"{name}_ms_p99"] = round(result["p99"], 2)
            out[f"{name}_rate_per_s"] = round(result["rate"])
            out[f"{name}_missing"] = int(result["missing"])
    if "latency_nats_ms_p50" in out:
        out["latency_ms_p50"] = out["latency_nats_ms_p50"]
        out["latency_ms_p99"] = out.get("latency_nats_ms_p99", "failed")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", nargs="?", choices=["sink", "latency"])
    parser.add_argument("broker", nargs="?", choices=["nats", "redis"])
    parser.add_argument("--url")
    parser.add_argument("--frames", type=int, default=FRAMES)
    parser.add_argument("--seconds", type=float, default=LATENCY_SECONDS)
    args = parser.parse_args()
    if args.mode == "sink":  # one measured client run, in its own process
        result = asyncio.run(run_sink(args.url, args.broker, args.frames))
    elif args.mode == "latency":
        result = asyncio.run(run_latency(args.url, args.broker, args.seconds))
    else:
        from bench.__main__ import best_of

        found = figures(best_of)
        update_doc(found)
        for name, value in found.items():
            print(f"{name}: {value}")
        return
    sys.stdout.write(msgspec.json.encode(result).decode() + "\n")


if __name__ == "__main__":
    main()
