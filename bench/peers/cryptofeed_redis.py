"""cryptofeed's own Redis Streams backend (`TradeStream`) fed by its Binance feed.

The same feed as `cryptofeed_peer.py` (symbol table from the recorded exchangeInfo, websocket
pointed at the mock), with `TradeStream` as the trade callback: cryptofeed queues each trade and
its writer XADDs them (auto ids) to `<key>-BINANCE-<SYMBOL>` in pipelines. A separate connection
counts the stream's entries (XLEN); the clock runs from the first entry to the `frames`-th.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from common import Clock  # type: ignore[import-not-found]
from cryptofeed import FeedHandler  # type: ignore[import-not-found]
from cryptofeed.backends.redis import TradeStream  # type: ignore[import-not-found]
from cryptofeed.connection import WebsocketEndpoint  # type: ignore[import-not-found]
from cryptofeed.defines import BINANCE, TRADES  # type: ignore[import-not-found]
from cryptofeed.exchanges import Binance  # type: ignore[import-not-found]
from cryptofeed.symbols import Symbols  # type: ignore[import-not-found]
from cryptofeed_peer import allow_plain_websocket  # type: ignore[import-not-found]

POLL = 0.005


async def count(server: str, key: str, frames: int) -> None:
    redis = aioredis.Redis.from_url(server)
    try:
        while await redis.xlen(key) == 0:  # noqa: ASYNC110 - polling another process's writes
            await asyncio.sleep(POLL)
        first_count = await redis.xlen(key)
        first = Clock()
        while (held := await redis.xlen(key)) < frames:  # noqa: ASYNC110 - as above
            await asyncio.sleep(POLL)
        last = Clock()
        result = last.since(first, held - first_count)
        await redis.delete(key)
    finally:
        await redis.aclose()
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    os._exit(0)


def main() -> None:
    url, frames, symbol, exchange_info, server, name = sys.argv[1:7]
    with open(exchange_info) as fh:
        syms, info = Binance._parse_symbol_data(json.load(fh))
    Symbols.set(BINANCE, syms, info)
    allow_plain_websocket()
    Binance.websocket_endpoints = [WebsocketEndpoint(url)]
    std = next(k for k, v in syms.items() if v == symbol)
    address = urlsplit(server)
    stream = TradeStream(host=address.hostname, port=address.port or 6379, key=name)
    handler = FeedHandler(config={"log": {"disabled": True}})
    handler.add_feed(Binance(symbols=[std], channels=[TRADES], callbacks={TRADES: stream}))
    handler.run(start_loop=False, install_signal_handlers=False)
    loop = asyncio.get_event_loop()
    counting = loop.create_task(count(server, f"{name}-BINANCE-{std}", int(frames)))
    loop.run_until_complete(counting)


if __name__ == "__main__":
    main()
