"""unicorn-binance-websocket-api with its picows option, pointed at the mock exchange.

Output "dict": the library parses each frame before the callback, the closest of its forms to a
typed trade (its default "raw_data" hands over the unparsed string).
"""

from __future__ import annotations

import os
import sys
import threading

from common import Counter  # type: ignore[import-not-found]
from unicorn_binance_websocket_api import (  # type: ignore[import-not-found]
    BinanceWebSocketApiManager,
)


def main() -> None:
    url, frames, symbol = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    output = os.environ.get("UBWA_OUTPUT", "dict")
    counter = Counter(frames)
    done = threading.Event()

    def on_data(data: object) -> None:
        if isinstance(data, dict) and "result" in data:
            return
        if isinstance(data, str) and '"result"' in data:
            return
        if counter.hit():
            done.set()

    manager = BinanceWebSocketApiManager(
        exchange="binance.com",
        websocket_base_uri=url.rstrip("/") + "/",
        websocket_library="picows",
        output_default=output,
        disable_colorama=True,
        warn_on_update=False,
    )
    manager.create_stream(["trade"], [symbol.lower()], process_stream_data=on_data)
    done.wait(120)
    counter.report()
    manager.stop_manager()
    os._exit(0)


if __name__ == "__main__":
    main()
