"""Benchmark clients of this project, each run in a fresh process against the mock exchange.

`raw`: a count-only picows client, the ceiling of the websocket library itself.
`ours`: the real path: StreamHub -> decode -> per-symbol channel -> PubSub -> a subscriber
reading batches, counting typed trades delivered to it.
Prints one JSON object: count (trades after the clock started), seconds, cpu_s, rss_mb, and
mock_cpu_s when $BENCH_MOCK_PID names the mock; the clock starts at the first trade (for `ours`,
after the first batch) and stops at the last.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import msgspec
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from bench.peers.common import Clock
from streamer.binance.config import StreamerConfig
from streamer.binance.market import SpotMarket
from streamer.stream.hub import StreamHub
from streamer.stream.pubsub import PubSub, topic

SYMBOL = "ADAUSDT"


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class _Counter(WSListener):
    def __init__(self, total: int, done: asyncio.Future[Clock]) -> None:
        self.total = total
        self.count = 0
        self.started: Clock | None = None
        self.done = done

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is WSMsgType.TEXT:
            if self.count == 0:
                self.started = Clock()
            self.count += 1
            if self.count == self.total and not self.done.done():
                self.done.set_result(Clock())


async def run_raw(url: str, total: int) -> dict[str, float]:
    done: asyncio.Future[Clock] = asyncio.get_running_loop().create_future()
    stream = SYMBOL.lower() + "@trade"
    transport, listener = await ws_connect(
        lambda: _Counter(total, done), f"{url}/stream?streams={stream}"
    )
    assert isinstance(listener, _Counter)
    end = await done
    transport.disconnect()
    assert listener.started is not None
    return {**end.since(listener.started, total - 1), "rss_mb": rss_mb()}


async def run_ours(url: str, total: int) -> dict[str, float]:
    pubsub = PubSub()
    sub = pubsub.subscribe(topic(SYMBOL), maxlen=1_000_000)
    hub = StreamHub(SpotMarket(StreamerConfig(ws_url=url)), pubsub)
    runner = asyncio.create_task(hub.run())
    hub.attach(SYMBOL)
    first = len(await sub.get_batch())
    started = Clock()
    count = 0
    while first + count < total:
        batch = await sub.get_batch()
        count += len(batch)
    end = Clock()
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    return {**end.since(started, count), "rss_mb": rss_mb(), "dropped": sub.dropped}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["raw", "ours"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--frames", type=int, required=True)
    args = parser.parse_args()
    runner = run_raw if args.mode == "raw" else run_ours
    result = asyncio.run(runner(args.url, args.frames))
    sys.stdout.write(msgspec.json.encode(result).decode() + "\n")


if __name__ == "__main__":
    main()
