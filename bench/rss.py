"""Memory of the whole engine streaming every symbol of the real exchangeInfo.

The mock exchange (`streamer mock-exchange`, at recorded speed, Binance's limits on) runs in its
own process and serves all 1,695 symbols of the recorded exchangeInfo (recorded trades where there
are some, synthetic ones elsewhere); a fresh process
runs a StreamHub with one subscription to everything, attaches every symbol, lets it stream for
a while, and reports its resident memory.

Run: `python -m bench.rss` prints one JSON object.
"""

from __future__ import annotations

import asyncio
import sys
import time

import msgspec

from bench.client import rss_mb
from bench.mock_process import mock_exchange
from streamer.binance.config import StreamerConfig
from streamer.binance.market import SpotMarket
from streamer.binance.rest import BinanceRest
from streamer.stream.hub import StreamHub
from streamer.stream.pubsub import PubSub

STREAM_SECONDS = 15.0


async def measure(ws_url: str, rest_url: str) -> dict[str, float]:
    async with BinanceRest(rest_url) as rest:
        symbols = [s.symbol for s in (await rest.exchange_info()).symbols]
    pubsub = PubSub()
    sub = pubsub.subscribe()
    hub = StreamHub(SpotMarket(StreamerConfig(ws_url=ws_url, rest_url=rest_url)), pubsub)
    runner = asyncio.create_task(hub.run())
    for symbol in symbols:
        hub.attach(symbol)
    delivered = 0
    deadline = time.monotonic() + STREAM_SECONDS
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        delivered += len(sub.get_nowait_batch())
    live = sum(c.live for c in hub.connections())
    streaming = sum(s.state == "streaming" for s in hub.all_stats().values())
    result = {
        "symbols": float(len(symbols)),
        "live_streams": float(live),
        "symbols_streaming": float(streaming),
        "connections": float(len(hub.connections())),
        "trades_delivered": float(delivered),
        "rss_mb": rss_mb(),
    }
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    return result


def main() -> None:
    with mock_exchange("--speed=1") as mock:
        result = asyncio.run(measure(mock.ws_url, mock.rest_url))
    sys.stdout.write(msgspec.json.encode(result).decode() + "\n")


if __name__ == "__main__":
    main()
