"""A tiny data folder for the mock's tests: three symbols in the three trade file formats.

BNBBTC: 13-column recorder rows for ids 100..109 with ids 104 and 105 lost (a hole to fill),
ETHBTC: Binance's 7-column file in a zip with millisecond times, XRPUSDT: a 7-column csv with
microsecond times. The exchangeInfo lists them and LTCBTC, which has no data (a random walk).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from picows import WSFrame, WSListener, WSMsgType, WSTransport

BNB_IDS = [100, 101, 102, 103, 106, 107, 108, 109]
BASE_MS = 1_559_520_000_000


def recorder_row(trade_id: int, time_ms: int, price: str, qty: str, maker: bool) -> str:
    """One row in the recorder's 13-column format (event time 3 ms after the trade time)."""
    return ";".join(
        [
            f"00000000-0000-0000-0000-{trade_id:012d}",
            "trade",
            str(time_ms + 3),
            "BNBBTC",
            str(trade_id),
            price,
            qty,
            "1",
            "2",
            str(time_ms),
            "t" if maker else "f",
            "2019-06-03 00:00:00",
            "2019-06-03 00:00:00",
        ]
    )


def symbol_info(symbol: str, status: str) -> dict[str, object]:
    return {"symbol": symbol, "status": status, "baseAsset": symbol[:3], "quoteAsset": symbol[3:]}


@pytest.fixture
def tiny_data(tmp_path: Path) -> Path:
    """A data folder with trades/ in every supported format and an exchange_info/ response."""
    trades = tmp_path / "trades"
    trades.mkdir()
    rows = [
        recorder_row(i, BASE_MS + (i - 100) * 1000, f"0.0{i}", "1.5", i % 2 == 0)
        for i in reversed(BNB_IDS)
    ]
    with gzip.open(trades / "BNBBTC-2019-06-03.csv.gz", "wt") as handle:
        handle.write("\n".join(rows) + "\n")
    eth = "\n".join(
        f"{500 + k},0.05{k},2.0,0.1,{BASE_MS + k * 500},{'true' if k % 2 else 'false'},true"
        for k in range(6)
    )
    with zipfile.ZipFile(trades / "ETHBTC-trades-2019-06-03.zip", "w") as archive:
        archive.writestr("ETHBTC-trades-2019-06-03.csv", eth + "\n")
    xrp = "\n".join(
        f"{9000 + k},0.3{k},10,3,{BASE_MS * 1000 + k * 250},false,true" for k in range(4)
    )
    (trades / "XRPUSDT-trades-2025-01-01.csv").write_text(xrp + "\n")
    info = tmp_path / "exchange_info"
    info.mkdir()
    document = {
        "timezone": "UTC",
        "serverTime": 1,
        "rateLimits": [],
        "exchangeFilters": [],
        "symbols": [
            symbol_info("BNBBTC", "TRADING"),
            symbol_info("ETHBTC", "TRADING"),
            symbol_info("XRPUSDT", "TRADING"),
            symbol_info("LTCBTC", "BREAK"),
        ],
    }
    (info / "exchangeInfo.json").write_text(json.dumps(document))
    return tmp_path


async def until(condition: Callable[[], bool], *, attempts: int = 500) -> None:
    """Wait (at most ~5 s) for a condition the server reaches by itself, e.g. a registration."""
    for _ in range(attempts):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


class Probe(WSListener):
    """A picows client that queues every frame it gets and answers pings only when told to."""

    def __init__(self, *, pong: bool = False) -> None:
        self.pong = pong
        self.frames: asyncio.Queue[tuple[WSMsgType, bytes]] = asyncio.Queue()
        self.closed = asyncio.Event()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is WSMsgType.PING and self.pong:
            transport.send_pong(frame.get_payload_as_bytes())
        self.frames.put_nowait((frame.msg_type, frame.get_payload_as_bytes()))

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.closed.set()

    async def next(self, kind: WSMsgType) -> bytes:
        """The payload of the next frame of `kind`, skipping others."""
        while True:
            msg_type, payload = await asyncio.wait_for(self.frames.get(), 10)
            if msg_type is kind:
                return payload
