"""cryptofeed's Binance feed (trades arrive as `Trade` objects with Decimal price and amount).

Its symbol table is loaded from the recorded exchangeInfo instead of the network, and its
websocket endpoint is pointed at the mock exchange. It subscribes to `@aggTrade` (the only trade
stream it reads); the mock serves the same trades in that shape. cryptofeed refuses
any address but `wss://`; the script lifts only that check, so it can reach a plain local socket.
"""

from __future__ import annotations

import json
import os
import sys

from common import Counter  # type: ignore[import-not-found]
from cryptofeed import FeedHandler  # type: ignore[import-not-found]
from cryptofeed.connection import (  # type: ignore[import-not-found]
    WebsocketEndpoint,
    WSAsyncConn,
)
from cryptofeed.defines import BINANCE, TRADES  # type: ignore[import-not-found]
from cryptofeed.exchanges import Binance  # type: ignore[import-not-found]
from cryptofeed.symbols import Symbols  # type: ignore[import-not-found]


def allow_plain_websocket() -> None:
    original = WSAsyncConn.__init__

    def init(self: object, address: str, *args: object, **kwargs: object) -> None:
        plain = address.startswith("ws://")
        original(self, "wss://" + address[5:] if plain else address, *args, **kwargs)
        if plain:
            self.address = address  # type: ignore[attr-defined]

    WSAsyncConn.__init__ = init


def main() -> None:
    url, frames, symbol, exchange_info = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    with open(exchange_info) as fh:
        syms, info = Binance._parse_symbol_data(json.load(fh))
    Symbols.set(BINANCE, syms, info)
    allow_plain_websocket()
    Binance.websocket_endpoints = [WebsocketEndpoint(url)]
    counter = Counter(frames)

    async def on_trade(trade: object, receipt_timestamp: float) -> None:
        if counter.hit():
            counter.report()
            os._exit(0)

    std = next(k for k, v in syms.items() if v == symbol)
    handler = FeedHandler(config={"log": {"disabled": True}})
    handler.add_feed(Binance(symbols=[std], channels=[TRADES], callbacks={TRADES: on_trade}))
    handler.run(install_signal_handlers=False)


if __name__ == "__main__":
    main()
