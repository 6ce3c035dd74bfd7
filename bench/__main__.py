"""`make bench`: throughput, CPU and memory of the streaming engine, side by side with its peers.

Every client runs in its own fresh process against the project's mock exchange
(`streamer mock-exchange --speed max`, limits off) in a process of its own, started afresh for
each run so that every client reads the same frames: the same recorded trades of one symbol, with
the same ids, a fixed count of them. Clients run one after the other, each `ROUNDS` times; the
best round counts, since the only noise on a shared machine is other work slowing a round down.
Each run also reads the mock's CPU over the timed span, which shows whether the mock or the client
set the pace. Peers are installed by this script into their own virtualenvs under bench/.peers/
(gitignored) and count the trades their library hands to a callback. Ends by printing one
`name: value` line per figure and writing docs/benchmarks.md.
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

from bench import cluster, decoding, mock_exchange, recording, sinks
from bench.client import SYMBOL
from bench.docs import kept_sections
from bench.mock_process import EXCHANGE_INFO, FULL_SPEED, only_symbols
from bench.mock_process import mock_exchange as mock_process
from bench.peers.common import MOCK_PID

ROOT = Path(__file__).resolve().parents[1]
PEERS_DIR = ROOT / "bench" / ".peers"
PEER_SCRIPTS = ROOT / "bench" / "peers"
DOC = ROOT / "docs" / "benchmarks.md"
FRAMES = 750_000
ROUNDS = 3
TIMEOUT = 120
CLIENT = (sys.executable, "-m", "bench.client")
MOCK_URL = "<mock-url>"


@dataclass(frozen=True)
class Peer:
    name: str
    requirement: str
    script: str
    note: str


PEERS = (
    Peer(
        "ubwa",
        "unicorn-binance-websocket-api[picows]",
        "ubwa.py",
        "unicorn-binance-websocket-api, websocket_library='picows', output 'dict'",
    ),
    Peer(
        "cryptofeed",
        "cryptofeed",
        "cryptofeed_peer.py",
        "cryptofeed Binance feed, Trade objects with Decimal price/amount; on `@aggTrade`, "
        "the only trade stream it reads",
    ),
    Peer(
        "python_binance",
        "python-binance",
        "pybinance.py",
        "python-binance BinanceSocketManager.multiplex_socket, parsed dicts",
    ),
)


def run_json(
    command: Sequence[str], cwd: Path = ROOT, env: dict[str, str] | None = None
) -> dict[str, Any] | None:
    """Run one client process; its last stdout line is JSON. None (and why) if it failed."""
    try:
        done = subprocess.run(
            command,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
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
    """The fastest of `rounds` runs, each against a fresh mock, with its rate added.

    `MOCK_URL` in `command` becomes the mock's websocket URL; the mock's pid goes in the
    environment, so that the client can read the mock's CPU as it counts.
    """
    results = []
    for _ in range(rounds):
        with only_symbols(SYMBOL) as data, mock_process(*FULL_SPEED, f"--data-dir={data}") as mock:
            env = {**os.environ, MOCK_PID: str(mock.pid)}
            line = [mock.ws_url if part == MOCK_URL else part for part in command]
            result = run_json(line, cwd, env)
        if result is not None and result["seconds"] > 0:
            result["rate"] = result["count"] / result["seconds"]
            results.append(result)
    return max(results, key=lambda r: r["rate"]) if results else None


def pace(figures: dict[str, float | str], name: str, result: dict[str, Any]) -> bool:
    """Record who was busy during `name`'s best run; True if the mock was the busier process.

    Both shares are CPU seconds per second of the timed span (1.0 = one core all along). The
    busier process set the pace; a client that waited on a busy mock measured the mock.
    """
    seconds = float(result["seconds"])
    client = float(result["cpu_s"]) / seconds
    mock = float(result.get("mock_cpu_s", 0.0)) / seconds
    figures[f"{name}_client_busy"] = round(client, 2)
    figures[f"{name}_mock_busy"] = round(mock, 2)
    return mock >= client


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
    mock_bound: list[str] = []
    started = time.monotonic()

    raw = best_of([*CLIENT, "raw", "--url", MOCK_URL, "--frames", str(FRAMES)])
    ours = best_of([*CLIENT, "ours", "--url", MOCK_URL, "--frames", str(FRAMES)])
    if raw is not None:
        figures["raw_read_per_s"] = round(raw["rate"])
        if pace(figures, "raw_read", raw):
            mock_bound.append("raw_read")
    if ours is not None:
        figures["delivered_per_s"] = round(ours["rate"])
        figures["cpu_s_per_million"] = round(ours["cpu_s"] / ours["count"] * 1e6, 3)
        figures["delivered_dropped"] = ours["dropped"]
        if pace(figures, "delivered", ours):
            mock_bound.append("delivered")
    if raw is not None and ours is not None:
        figures["delivered_vs_raw_ratio"] = round(ours["rate"] / raw["rate"], 3)
    figures.update(recording.figures(ours["rate"] if ours is not None else None, best_of))
    figures.update(cluster.figures())
    figures.update(sinks.figures(best_of))

    peer_rates: dict[str, float] = {}
    for peer in PEERS:
        python = peer_python(peer)
        if python is None:
            notes[peer.name] = "not installed"
            continue
        extra = [str(EXCHANGE_INFO)] if peer.name == "cryptofeed" else []
        command = [str(python), peer.script, MOCK_URL, str(FRAMES), SYMBOL, *extra]
        result = best_of(command, cwd=PEER_SCRIPTS)
        if result is None:
            notes[peer.name] = "failed to run against the mock exchange"
            continue
        peer_rates[peer.name] = result["rate"]
        figures[f"peer_{peer.name}_per_s"] = round(result["rate"])
        if pace(figures, f"peer_{peer.name}", result):
            mock_bound.append(f"peer_{peer.name}")
        notes[peer.name] = peer.note
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
        pushed = max(
            (mock_exchange.run() for _ in range(ROUNDS)), key=lambda r: r["mock_frames_per_s"]
        )
    except (OSError, RuntimeError, ConnectionError, TimeoutError) as exc:
        figures["mock_frames_per_s"] = f"failed: {exc!r}"
    else:
        figures["mock_frames_per_s"] = round(pushed["mock_frames_per_s"])
        figures["mock_frames_busy"] = round(pushed["mock_frames_busy"], 2)
        if ours is not None:
            figures["mock_over_delivered"] = round(pushed["mock_frames_per_s"] / ours["rate"], 2)
    figures["mock_bound"] = ",".join(mock_bound) or "none"

    figures["load_1m_at_end"] = round(loadavg(), 2)
    figures["bench_seconds"] = round(time.monotonic() - started)
    write_doc(figures, notes)
    for name, value in figures.items():
        print(f"{name}: {value}")


def write_doc(figures: dict[str, float | str], notes: dict[str, str]) -> None:
    rows = "\n".join(f"| `{name}` | {value} |" for name, value in figures.items())
    peers = "\n".join(f"  - `{name}`: {note}" for name, note in notes.items())
    kept = kept_sections(DOC.read_text()) if DOC.exists() else ""
    DOC.write_text(
        TEMPLATE.format(
            rows=rows, peers=peers, pace=pace_lines(figures), frames=FRAMES, rounds=ROUNDS
        )
        + ("\n" + kept if kept else "")
    )


def pace_lines(figures: dict[str, float | str]) -> str:
    """One line per client: its CPU share and the mock's in its best run, and which set the pace."""
    lines = []
    for name, value in figures.items():
        if not name.endswith("_client_busy"):
            continue
        client = name.removesuffix("_client_busy")
        mock = figures[f"{client}_mock_busy"]
        if float(mock) >= float(value):
            verdict = "mock busier: the mock's limit, not the client's"
        else:
            verdict = "client busier: the client's own rate"
        lines.append(f"- `{client}`: client {value}, mock {mock}; {verdict}.")
    return "\n".join(lines) or "- no client run reported its CPU."


TEMPLATE = """# Benchmarks

Produced by `make bench` (`python -m bench`), which overwrites this file. Figures are from one
run on the machine that ran it; compare runs on the same machine only.

| figure | value |
|---|---|
{rows}

## What is measured

- `delivered_per_s`: typed `TradeEvent`s (exact `Decimal` price and quantity) that reach an
  in-process subscriber through the real path: picows socket -> msgspec decode -> per-symbol
  ordering and de-duplication -> pub/sub -> `Subscription.get_batch()`. One process, one core.
- `raw_read_per_s`: a count-only picows client reading the same frames from the same mock;
  `delivered_vs_raw_ratio` is how much of that rate the processing keeps.
- `cpu_s_per_million`: CPU seconds the streaming process spent per million trades delivered.
- `peer_*_per_s`: trades each peer library handed to its callback, on the same frames:
{peers}
- `failover_seconds`, `rebalance_seconds`, `lease_renew_ms`, `lease_cpu_share_1695`: three
  instances on one PostgreSQL database with the default leases (ttl 6 s, renewed every second),
  30 symbols: from `kill -9` of the busiest instance until all its symbols stream on the others,
  and from a new instance's readiness until every instance holds 10 again (medians of 3); the
  mean renew round; the CPU share of one core an instance spends on rounds with 1,695 symbols
  over 3 instances (`bench/cluster.py`, `python -m bench.cluster` alone).
- `record_per_s`: trades per second made durable by `streamer record`'s path (the sink runner
  and the Parquet sink: journal fsynced per batch, parts written and renamed at close) on the
  same feed, in a fresh process, best of 2 rounds of 300,000; `record_vs_delivered` divides it by
  `delivered_per_s` (target >= 0.5). `bytes_per_trade` is the Parquet parts' size per recorded
  trade, `csv_gz_bytes_per_trade` the recorded gzip CSV day's, `bytes_vs_csv_gz` their ratio.
- `sink_nats_per_s` / `sink_redis_per_s`: trades per second the broker confirmed through the
  service's sink path (stream -> pub/sub -> sink runner -> `NatsSink` / `RedisSink`) on the same
  feed, best of 2 rounds of 200,000, each checked by a separate client counting what the broker
  holds; `sink_*_cpu_s_per_million` is the streaming process's CPU per million trades (the
  brokers' own CPU is not in it). `peer_cryptofeed_redis_per_s` is cryptofeed's own Redis Streams
  backend (`TradeStream`) on the same frames, counted by XLEN; `sink_redis_vs_cryptofeed` divides
  the two (target >= 3). `latency_<broker>_ms_p50/p99` (`latency_ms_*` = NATS): from the socket
  read that decoded a trade to its arrival at a consumer of the broker (JetStream ordered
  consumer; blocking XREAD) in the same process, with the mock paced at about 10,000 trades/s
  (`latency_*_rate_per_s` is the rate reached; `latency_*_missing` trades had not arrived half a
  second after the stream stopped), after a one-second warm-up; `latency_1k_*` is the same at
  about 1,000 trades/s. The brokers are the machine's shared servers, so their load from other
  work shows in these figures; a process starved of CPU queues trades, which shows as seconds of
  latency and missing trades at the higher pace.
- `best_peer_per_s` / `delivered_vs_best_peer`: the fastest peer and how many times faster the
  delivered rate is.
- `*_client_busy` / `*_mock_busy`: CPU seconds per second of the timed span of the client and of
  the mock in that client's best run (1.0 = a whole core all along); `mock_bound` lists the
  clients whose mock was the busier process (see below).
- `rss_mb_all_symbols`: resident memory of a process streaming every symbol of the recorded
  exchangeInfo (1,695) from the mock exchange at recorded speed with Binance's limits on, with one
  subscription to all of them.
- `decode_msgspec_per_s` / `decode_orjson_per_s`: decoding alone into the same typed event;
  `decoder` names the faster, which the stream uses.
- `mock_frames_per_s`: how fast the mock pushes trade frames to one connection (four recorded
  symbols on one combined stream, 3,000,000 frames, a count-only picows reader), best of
  {rounds}; `mock_frames_busy` is the mock's CPU share meanwhile. `mock_over_delivered` is how many
  times faster the mock pushes than the streamer's own client delivers.

## Method

Every throughput figure comes from the project's mock exchange, `streamer mock-exchange
--speed=max` (a trade is sent as soon as the client can take it) with pings, connection lifetime
and the message and connection limits switched off, in a process of its own. A fresh mock is
started for every run, so every client, ours and the peers alike, reads the same frames: the
recorded ADAUSDT day of `../shared/data` as `adausdt@trade` (cryptofeed: `adausdt@aggTrade`, the
same trades), from the same first trade id, {frames:,} trades per run. Each client runs in a fresh
process, one at a time, best of {rounds} rounds. The clock runs from the first trade received to
the last counted one, not to the close handshake. The machine has 2 cores shared with other work;
the load averages at start and end are recorded above, since a busy machine lowers every figure
(a run keeps two processes busy itself, the mock and a client, so the load at the end counts
them too).

## Who set the pace

Each client and the mock read their CPU time at the first and at the last counted trade. With
one core each, the process that was busy all along set the pace and the other one waited:

{pace}

A count-only reader does almost nothing per frame, so it keeps up with the mock and the two
finish close together: `raw_read_per_s` is at least what picows reads, and when the mock was the
busier it is the mock's ceiling, not the library's. The streamer's client and every peer do far
more per trade than the mock, which is what `mock_over_delivered` shows.
"""


if __name__ == "__main__":
    main()
