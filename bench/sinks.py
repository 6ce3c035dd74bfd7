"""Sink figures: trades/s into NATS JetStream and Redis Streams, cryptofeed's Redis backend on
the same trades, CPU per million trades, the three sinks together at full speed, and the latency
from the socket to a broker consumer in another process.

`sink` mode (a fresh process, like every client of `bench.client`) streams the benchmark symbol
from the mock (`--speed max`) through the service's real path: StreamHub -> pub/sub's tap -> the
journal -> the sink runner's cursor -> `NatsSink` / `RedisSink` -> the broker on 127.0.0.1. The
clock starts at the first trade the broker confirmed and stops once `--frames` more are
confirmed; a separate client then counts what the broker holds (JetStream's stream state,
Redis's XLEN), and the run fails unless that count covers every trade measured.

`all` mode streams at full speed for 60 s into NATS, Redis and a Parquet recording together,
then waits until every sink has sent everything: the trades any sink lost (none, in a good
run) and the process's CPU per million trades, against `none` mode (the same stream, no sink).

`latency` mode streams from a mock paced at about 10,000 (and 50,000, and 1,000) trades/s and
stamps each trade as the stream hands it to pub/sub, straight from the socket read that decoded
it; a consumer of the broker in a process of its own (`consume` mode: a JetStream ordered
consumer, a blocking XREAD) stamps it again on arrival, on the same monotonic clock. The figures
are the percentiles of the difference, after a one-second warm-up.

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
from bench.journaled import lost as lost_by
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
BUSY_RATE = 50_000
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
        async with journaled([sink], pubsub, Path(folder)) as (runner,):
            hub = StreamHub(SpotMarket(StreamerConfig(ws_url=url)), pubsub)
            tasks = [asyncio.create_task(hub.run())]
            hub.attach(SYMBOL)
            try:
                yield runner, tasks
            finally:
                await stop(tasks)


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
            lost = lost_by(runner)
        counted = await broker_count(broker, name)
        if counted < total:
            raise SystemExit(f"the broker holds {counted} trades, fewer than {total} measured")
        return {**end.since(started, total), "dropped": lost, "held": counted}
    finally:
        await forget(broker, name)


ALL_SECONDS = 60.0
"""`--speed max` this long with NATS, Redis and the Parquet recording together."""
CATCH_UP = 300.0
"""Most seconds the sinks may take to send what they had not when the stream stopped."""


async def run_all(url: str, seconds: float, with_sinks: bool) -> dict[str, float]:
    """The stream at full speed for `seconds` with the three sinks (or none), then until every
    sink has sent everything: trades streamed, CPU of this one process, trades lost."""
    name = f"bench{secrets.token_hex(4)}"
    pubsub = PubSub()
    with tempfile.TemporaryDirectory(prefix="bench-all-") as folder:
        sinks = []
        if with_sinks:
            sinks = [
                sink_from_url(target_url("nats", name))[0],
                sink_from_url(target_url("redis", name))[0],
                sink_from_url(f"parquet://{folder}/recording")[0],
            ]
        try:
            async with journaled(sinks, pubsub, Path(folder) / "journal") as runners:
                hub = StreamHub(SpotMarket(StreamerConfig(ws_url=url)), pubsub)
                streaming = asyncio.create_task(hub.run())
                hub.attach(SYMBOL)
                while SYMBOL not in hub.positions():  # noqa: ASYNC110 - nothing announces it
                    await asyncio.sleep(POLL)
                first = hub.positions()[SYMBOL]
                started = Clock()
                await asyncio.sleep(seconds)
                streaming.cancel()
                await asyncio.gather(streaming, return_exceptions=True)
                count = hub.positions()[SYMBOL] - first
                deadline = time.monotonic() + CATCH_UP
                while any(r.stats().lag for r in runners) and time.monotonic() < deadline:  # noqa: ASYNC110
                    await asyncio.sleep(POLL)
                end = Clock()
                behind = sum(r.stats().lag for r in runners)
                lost = sum(lost_by(r) for r in runners)
                catch_up = end.wall - started.wall - seconds
        finally:
            if with_sinks:
                await forget("nats", name)
                await forget("redis", name)
    return {
        **end.since(started, count),
        "seconds": seconds,
        "lost": lost,
        "behind": behind,
        "catch_up_s": catch_up,
    }


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
    consumer = None
    try:
        async with start(url, broker, name, pubsub) as (runner, tasks):
            consumer = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.sinks",
                "consume",
                broker,
                "--name",
                name,
                "--seconds",
                str(seconds + 0.5),
                stdout=asyncio.subprocess.PIPE,
            )
            assert consumer.stdout is not None
            await consumer.stdout.readline()  # "ready": subscribed
            began = time.perf_counter()
            await asyncio.sleep(seconds)
            await stop(tasks)
            output, _ = await consumer.communicate()
            lost = lost_by(runner)
        arrived = {int(k): v for k, v in msgspec.json.decode(output).items()}
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
        if consumer is not None and consumer.returncode is None:
            consumer.kill()
            await consumer.wait()
        await forget(broker, name)


async def run_consumer(broker: str, name: str, seconds: float) -> dict[int, float]:
    """In a process of its own: note when each trade arrives from the broker, for `seconds`.

    `time.perf_counter` reads CLOCK_MONOTONIC, one clock for every process of the machine, so
    its readings compare with the streaming process's stamps."""
    arrived: dict[int, float] = {}
    close = await consume(broker, name, arrived)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    await asyncio.sleep(seconds)
    await close()
    return arrived


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
    for rate, tag in ((LATENCY_RATE, ""), (BUSY_RATE, "_50k"), (GENTLE_RATE, "_1k")):
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
    every: dict[str, dict[str, Any]] = {}
    for mode in ("none", "all"):
        command = [*module, mode, "--url", MOCK_URL, "--seconds", str(ALL_SECONDS)]
        result = best_of(command, 1)
        if result is None:
            out[f"three_sinks_{mode}"] = "failed"
            continue
        every[mode] = result
    if "all" in every:
        result = every["all"]
        out["three_sinks_streamed_per_s"] = round(result["count"] / ALL_SECONDS)
        out["three_sinks_lost"] = int(result["lost"])
        out["three_sinks_behind_at_end"] = int(result["behind"])
        out["three_sinks_catch_up_s"] = round(result["catch_up_s"], 1)
        out["three_sinks_cpu_s_per_million"] = round(result["cpu_s"] / result["count"] * 1e6, 2)
    if "none" in every:
        result = every["none"]
        out["no_sinks_cpu_s_per_million"] = round(result["cpu_s"] / result["count"] * 1e6, 2)
    if "all" in every and "none" in every:
        out["three_sinks_cpu_vs_none"] = round(
            float(out["three_sinks_cpu_s_per_million"]) / float(out["no_sinks_cpu_s_per_million"]),
            2,
        )
    if "latency_nats_ms_p50" in out:
        out["latency_ms_p50"] = out["latency_nats_ms_p50"]
        out["latency_ms_p99"] = out.get("latency_nats_ms_p99", "failed")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", nargs="?", choices=["sink", "latency", "all", "none", "consume"])
    parser.add_argument("--name")
    parser.add_argument("broker", nargs="?", choices=["nats", "redis"])
    parser.add_argument("--url")
    parser.add_argument("--frames", type=int, default=FRAMES)
    parser.add_argument("--seconds", type=float, default=LATENCY_SECONDS)
    args = parser.parse_args()
    if args.mode == "sink":  # one measured client run, in its own process
        result = asyncio.run(run_sink(args.url, args.broker, args.frames))
    elif args.mode == "latency":
        result = asyncio.run(run_latency(args.url, args.broker, args.seconds))
    elif args.mode == "consume":
        arrivals = asyncio.run(run_consumer(args.broker, args.name, args.seconds))
        sys.stdout.write(msgspec.json.encode(arrivals).decode() + "\n")
        return
    elif args.mode in ("all", "none"):
        result = asyncio.run(run_all(args.url, args.seconds, args.mode == "all"))
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
