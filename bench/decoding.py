"""Decoding alone: msgspec straight into the typed struct vs orjson to a dict then the struct.

Both produce the same `TradeEvent` with exact decimals, from the same recorded frames, so the
difference is only the decoder's. The faster one is what the stream uses.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable
from decimal import Decimal

import orjson

from bench.client import SYMBOL
from bench.mock_process import DATA
from streamer.binance.decode import decode_envelope
from streamer.events import TradeEvent

FRAMES = 200_000
FIRST_ID = 100_000_000_000


def recorded_rows() -> list[list[str]]:
    """The recorded day of `SYMBOL`, in the recorder's 13 columns, in trade-id order."""
    with gzip.open(DATA / "trades" / f"{SYMBOL}-2019-06-03.csv.gz", "rt") as fh:
        rows = [line.rstrip("\n").split(";") for line in fh]
    rows.sort(key=lambda row: int(row[4]))
    return rows


def frames(count: int = FRAMES) -> list[bytes]:
    rows = recorded_rows()
    out = []
    for i in range(count):
        row = rows[i % len(rows)]
        data = {
            "e": "trade",
            "E": int(row[2]),
            "s": row[3],
            "t": FIRST_ID + i,
            "p": row[5],
            "q": row[6],
            "T": int(row[9]),
            "m": row[10] == "t",
            "M": True,
        }
        out.append(orjson.dumps({"stream": row[3].lower() + "@trade", "data": data}))
    return out


def with_msgspec(frame: bytes) -> TradeEvent:
    return decode_envelope(frame).data


def with_orjson(frame: bytes) -> TradeEvent:
    data = orjson.loads(frame)["data"]
    return TradeEvent(
        data["e"],
        data["E"],
        data["s"],
        data["t"],
        Decimal(data["p"]),
        Decimal(data["q"]),
        data["T"],
        data["m"],
        data.get("b"),
        data.get("a"),
    )


def rate(decode: Callable[[bytes], TradeEvent], batch: list[bytes], rounds: int = 3) -> float:
    """Best of `rounds`: frames decoded per second."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for frame in batch:
            decode(frame)
        best = min(best, time.perf_counter() - start)
    return len(batch) / best


def run() -> dict[str, float]:
    batch = frames()
    assert with_msgspec(batch[0]) == with_orjson(batch[0])
    return {
        "decode_msgspec_per_s": rate(with_msgspec, batch),
        "decode_orjson_per_s": rate(with_orjson, batch),
    }
