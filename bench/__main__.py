"""`make bench`: throughput, CPU and memory of the streaming engine, side by side with its peers.

Every client runs in its own fresh process against the same fast feed (`bench.feed`, its own
process), one after the other, each `ROUNDS` times; the best round counts, since the only noise
on a shared machine is other work slowing a round down. Peers are installed by this script into
their own virtualenvs under bench/.peers/ (gitignored) and count the trades their library hands
to a callback. Ends by printing one `name: value` line per figure and writing docs/benchmarks.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import venv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from bench import decoding
from bench.feed import DATA, SYMBOL

ROOT = Path(__file__).resolve().parents[1]
PEERS_DIR = ROOT / "bench" / ".peers"
PEER_SCRIPTS = ROOT / "bench" / "peers"
DOC = ROOT / "docs" / "benchmarks.md"
EXCHANGE_INFO = DATA.parent / "exchange_info" / "binance-spot-exchangeInfo-2021-10-12.json"
FRAMES = 2_000_000
ROUNDS = 3
TIMEOUT = 300


@dataclass(frozen=True)
class Peer:
    name: str
    requirement: str
    script: str
    frames: int
    note: str


PEERS = (
    Peer(
        "ubwa",
        "unicorn-binance-websocket-api[picows]",
        "ubwa.py",
        1_000_000,
        "unicorn-binance-websocket-api, websocket_library='picows', output 'dict'",
    ),
    Peer(
        "cryptofeed",
        "cryptofeed",
        "cryptofeed_peer.py",
        500_000,
        "cryptofeed Binance feed, Trade objects with Decimal price/amount (aggTrade shape)",
    ),
    Peer(
        "python_binance",
        "python-binance",
        "pybinance.py",
        200_000,
        "python-binance BinanceSocketManager.multiplex_socket, parsed dicts",
    ),
)


class Feed:
    """The feed process; `url` is its websocket base URL."""

    def __init__(self, frames: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.feed", "--frames", str(frames)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("port: "):
            raise RuntimeError(f"the feed did not start: {line!r}")
        self.url = f"ws://127.0.0.1:{line.split()[1]}"

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def run_json(command: Sequence[str], cwd: Path = ROOT) -> dict[str, Any] | None:
    """Run one client process; its last stdout line is JSON. None (and why) if it failed."""
    try:
        done = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        print(f"# {command[-3:]} timed out", file=sys.stderr)
        return None
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        print(f"# {command[1:3]} failed: {tail[0]}", file=sys.stderr)
        return None
    result: dict[str, Any] = msgspec.json.decode(lines[-1])
    return result


def best_of(
    command: Sequence[str], rounds: int = ROUNDS, cwd: Path = ROOT
) -> dict[str, Any] | None:
    """The fastest of `rounds` runs, with its rate (trades per second) added."""
    results = []
    for _ in range(rounds):
        result = run_json(command, cwd)
        if result is not None and result["seconds"] > 0:
            result["rate"] = result["count"] / result["seconds"]
            results.append(result)
    return max(results, key=lambda r: r["rate"]) if results else None


def peer_python(peer: Peer) -> Path | None:
    """The peer's interpreter, installing it into its own venv the first time."""
    home = PEERS_DIR / peer.name
    python = home / "bin" / "python"
    stamp = home / ".installed"
    if stamp.exists():
        return python
    print(f"# installing {peer.requirement} into {home}", file=sys.stderr)
    venv.create(home, with_pip=True, clear=True)
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", peer.requirement],
        capture_output=True,
        text=True,
        check=False,
    )
    if install.returncode != 0:
        print(f"# could not install {peer.requirement}: {install.stderr[-300:]}", file=sys.stderr)
        return None
    stamp.touch()
    return python


def loadavg() -> float:
    return os.getloadavg()[0]


def main() -> None:
    figures: dict[str, float | str] = {"load_1m_at_start": round(loadavg(), 2)}
    notes: dict[str, str] = {}
    started = time.monotonic()

    feed = Feed(max([FRAMES, *(p.frames for p in PEERS)]))
    try:
        raw = best_of(
            [
                sys.executable,
                "-m",
                "bench.client",
                "raw",
                "--url",
                feed.url,
                "--frames",
                str(FRAMES),
            ]
        )
        ours = best_of(
            [
                sys.executable,
                "-m",
                "bench.client",
                "ours",
                "--url",
                feed.url,
                "--frames",
                str(FRAMES),
            ]
        )
        peer_rates: dict[str, float] = {}
        for peer in PEERS:
            python = peer_python(peer)
            if python is None:
                notes[peer.name] = "not installed"
                continue
            args = [str(python), peer.script, feed.url, str(peer.frames), SYMBOL]
            if peer.name == "cryptofeed":
                args.append(str(EXCHANGE_INFO))
            result = best_of(args, cwd=PEER_SCRIPTS)
            if result is None:
                notes[peer.name] = "failed to run against the local feed"
                continue
            peer_rates[peer.name] = result["rate"]
            figures[f"peer_{peer.name}_per_s"] = round(result["rate"])
            notes[peer.name] = peer.note
    finally:
        feed.close()

    if raw is not None:
        figures["raw_read_per_s"] = round(raw["rate"])
    if ours is not None:
        figures["delivered_per_s"] = round(ours["rate"])
        figures["cpu_s_per_million"] = round(ours["cpu_s"] / ours["count"] * 1e6, 3)
        figures["delivered_dropped"] = ours["dropped"]
    if raw is not None and ours is not None:
        figures["delivered_vs_raw_ratio"] = round(ours["rate"] / raw["rate"], 3)
    if peer_rates:
        best = max(peer_rates, key=peer_rates.__getitem__)
        figures["best_peer"] = best
        figures["best_peer_per_s"] = round(peer_rates[best])
        if ours is not None:
            figures["delivered_vs_best_peer"] = round(ours["rate"] / peer_rates[best], 2)

    rss = run_json([sys.executable, "-m", "bench.rss"])
    if rss is not None:
        figures["rss_mb_all_symbols"] = round(rss["rss_mb"], 1)
        figures["rss_symbols_streaming"] = int(rss["symbols_streaming"])
        figures["rss_connections"] = int(rss["connections"])

    decoders = decoding.run()
    for name, per_s in decoders.items():
        figures[name] = round(per_s)
    faster = decoders["decode_msgspec_per_s"] >= decoders["decode_orjson_per_s"]
    figures["decoder"] = "msgspec" if faster else "orjson"

    try:
        from bench import mock_exchange
    except ImportError:
        notes["mock_exchange"] = "bench/mock_exchange.py absent"
    else:
        try:
            for name, rate in mock_exchange.run().items():
                figures[name] = round(rate)
        except Exception as exc:
            notes["mock_exchange"] = f"its benchmark failed: {exc!r}"

    figures["load_1m_at_end"] = round(loadavg(), 2)
    figures["bench_seconds"] = round(time.monotonic() - started)
    write_doc(figures, notes)
    for name, value in figures.items():
        print(f"{name}: {value}")


def write_doc(figures: dict[str, float | str], notes: dict[str, str]) -> None:
    rows = "\n".join(f"| `{name}` | {value} |" for name, value in figures.items())
    peers = "\n".join(f"  - `{name}`: {note}" for name, note in notes.items())
    DOC.write_text(TEMPLATE.format(rows=rows, peers=peers, frames=FRAMES, rounds=ROUNDS))


TEMPLATE = """# Benchmarks

Produced by `make bench` (`python -m bench`), which overwrites this file. Figures are from one
run on the machine that ran it; compare runs on the same machine only.

| figure | value |
|---|---|
{rows}

## What is measured

- `delivered_per_s`: typed `TradeEvent`s (exact `Decimal` price and quantity) that reach an
  in-process subscriber through the real path: picows socket -> msgspec decode -> per-symbol
  ordering and de-duplication -> pub/sub -> `Subscription.get_batch()`. One process, one core,
  {frames:,} trades of the recorded ADAUSDT day replayed with consecutive ids.
- `raw_read_per_s`: a count-only picows client reading the same frames from the same feed;
  `delivered_vs_raw_ratio` is how much of the websocket library's own speed the processing keeps.
- `cpu_s_per_million`: CPU seconds the streaming process spent per million trades delivered.
- `peer_*_per_s`: trades each peer library handed to its callback, on the same feed:
{peers}
- `best_peer_per_s` / `delivered_vs_best_peer`: the fastest peer and how many times faster the
  delivered rate is.
- `rss_mb_all_symbols`: resident memory of a process streaming every symbol of the recorded
  exchangeInfo (1,695) from the mock exchange, with one subscription to all of them.
- `decode_msgspec_per_s` / `decode_orjson_per_s`: decoding alone into the same typed event;
  `decoder` names the faster, which the stream uses.
- `mock_frames_per_s` and the figures after it come from the mock exchange's own benchmark
  (`bench/mock_exchange.py`): how fast the mock feeds one connection, and this project's client
  reading from it. Throughput runs above use `bench/feed.py` instead: it serves every client the
  same pre-encoded frames, and also in the `@aggTrade` shape, the only trade stream cryptofeed
  reads.

## Method

Every client runs in a fresh process, one at a time, against `bench/feed.py` in its own process
(frames pre-encoded, written in large chunks), best of {rounds} rounds. The clock runs from the
first trade received to the last. The machine has 2 cores shared with other work; the load
averages at start and end are recorded above, since a busy machine lowers every figure.
"""


if __name__ == "__main__":
    main()
