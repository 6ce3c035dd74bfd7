"""python-binance's BinanceSocketManager multiplex socket, pointed at the mock exchange."""

from __future__ import annotations

import asyncio
import os
import sys

from common import Counter  # type: ignore[import-not-found]

from binance import (  # type: ignore[import-not-found,import-untyped,unused-ignore]
    AsyncClient,
    BinanceSocketManager,
)


async def run(url: str, frames: int, symbol: str) -> Counter:
    counter = Counter(frames)
    client = AsyncClient()
    manager = BinanceSocketManager(client, max_queue_size=1_000_000)
    manager.STREAM_URL = url.rstrip("/") + "/"
    socket = manager.multiplex_socket([symbol.lower() + "@trade"])
    async with socket as stream:
        while True:
            message = await stream.recv()
            if isinstance(message, dict) and "data" in message and counter.hit():
                break
    await client.close_connection()
    return counter


def main() -> None:
    url, frames, symbol = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    counter = asyncio.run(run(url, frames, symbol))
    counter.report()
    os._exit(0)


if __name__ == "__main__":
    main()
