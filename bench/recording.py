"""Recording figures: `record_per_s`, `record_vs_delivered` and `bytes_per_trade`.

`record` mode (a fresh process, like every client of `bench.client`) streams the benchmark symbol
from the mock through the real path of `streamer record`: StreamHub -> pub/sub -> the sink
runner's subscription -> `ParquetSink` (journal fsynced per batch, parts rolled at 32 MiB and at
close). The clock starts at the first trade the sink made durable and stops once `--frames` more
are durable and the sink has closed, its last part renamed into place. `run()` measures it and
`delivered_per_s` (the plain subscriber of `bench.client ours`) on the same feed, best of
`ROUNDS` each, and compares the bytes on disk per trade with the recorded gzip CSV's.

`python -m bench.recording` runs this piece alone and updates its rows in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec
import pyarrow.parquet as pq

from bench.client import SYMBOL
from bench.journaled import journaled, lost
from bench.mock_process import DATA
from bench.peers.common import Clock
from streamer.binance.config import StreamerConfig
from streamer.binance.market import SpotMarket
from streamer.sinks.parquet import ParquetSink
from streamer.stream.hub import StreamHub
from streamer.stream.pubsub import PubSub

FRAMES = 300_000
ROUNDS = 2
POLL = 0.005
DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
CSV = DATA / "trades" / f"{SYMBOL}-2019-06-03.csv.gz"
CSV_ROWS = 57_018


async def run_record(url: str, total: int, folder: Path) -> dict[str, float]:
    pubsub = PubSub()
    async with journaled([ParquetSink(folder / "rec")], pubsub, folder / "journal") as runners:
        [runner] = runners
        hub = StreamHub(SpotMarket(StreamerConfig(ws_url=url)), pubsub)
        streaming = asyncio.create_task(hub.run())
        hub.attach(SYMBOL)
        while SYMBOL not in runner.durable:  # noqa: ASYNC110 - the runner announces nothing
            await asyncio.sleep(POLL)
        first = runner.durable[SYMBOL]
        started = Clock()
        while runner.durable[SYMBOL] < first + total:  # noqa: ASYNC110 - as above
            await asyncio.sleep(POLL)
        end = Clock()
        streaming.cancel()
        await asyncio.gather(streaming, return_exceptions=True)
        count = runner.durable[SYMBOL] - first
        dropped = lost(runner)
    on_disk, rows = parquet_size(folder / "rec")
    return {
        **end.since(started, count),
        "bytes_per_trade": on_disk / rows,
        "dropped": dropped,
    }


def parquet_size(folder: Path) -> tuple[int, int]:
    """Bytes of the recording's trade parts, and the trades they hold."""
    parts = list(folder.glob("symbol=*/date=*/*.parquet"))
    return sum(p.stat().st_size for p in parts), sum(pq.read_metadata(p).num_rows for p in parts)


Runs = Callable[[Sequence[str], int], dict[str, Any] | None]
"""`bench.__main__.best_of`: the best of some client runs, each against a fresh mock."""


def figures(delivered_per_s: float | None, best_of: Runs) -> dict[str, float | str]:
    """The recording figures, next to `delivered_per_s` of the same run."""
    out: dict[str, float | str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-record-") as folder:
        command = [sys.executable, "-m", "bench.recording", "--url", "<mock-url>"]
        result = best_of([*command, "--frames", str(FRAMES), "--folder", folder], ROUNDS)
    if result is None:
        out["record_per_s"] = "failed"
        return out
    out["record_per_s"] = round(result["rate"])
    out["record_dropped"] = int(result["dropped"])
    if delivered_per_s:
        out["record_vs_delivered"] = round(result["rate"] / delivered_per_s, 3)
    out["bytes_per_trade"] = round(result["bytes_per_trade"], 1)
    csv_bytes = CSV.stat().st_size / CSV_ROWS
    out["csv_gz_bytes_per_trade"] = round(csv_bytes, 1)
    out["bytes_vs_csv_gz"] = round(result["bytes_per_trade"] / csv_bytes, 3)
    return out


def update_doc(found: dict[str, float | str]) -> None:
    """Replace (or add) this piece's rows in the figures table of docs/benchmarks.md."""
    text = DOC.read_text()
    for name, value in found.items():
        row = f"| `{name}` | {value} |"
        pattern = re.compile(rf"^\| `{re.escape(name)}` \|.*\|$", re.MULTILINE)
        if pattern.search(text):
            text = pattern.sub(row, text)
        else:
            last = list(re.finditer(r"^\| `[a-z_0-9]+` \|.*\|$", text, re.MULTILINE))[-1]
            text = text[: last.end()] + "\n" + row + text[last.end() :]
    DOC.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url")
    parser.add_argument("--frames", type=int, default=FRAMES)
    parser.add_argument("--folder", type=Path)
    args = parser.parse_args()
    if args.url:  # one measured client run, in its own process
        with tempfile.TemporaryDirectory(dir=args.folder) as folder:
            result = asyncio.run(run_record(args.url, args.frames, Path(folder)))
        sys.stdout.write(msgspec.json.encode(result).decode() + "\n")
        return
    from bench.__main__ import CLIENT, MOCK_URL, best_of

    ours = best_of([*CLIENT, "ours", "--url", MOCK_URL, "--frames", str(FRAMES)], ROUNDS)
    delivered = ours["rate"] if ours else None
    found = figures(delivered, best_of)
    if delivered:
        found = {"record_delivered_per_s": round(delivered), **found}
    update_doc(found)
    for name, value in found.items():
        print(f"{name}: {value}")


if __name__ == "__main__":
    main()
