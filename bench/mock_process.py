"""The project's mock exchange (`streamer mock-exchange`) in a process of its own, for benchmarks.

A benchmark must measure the client, never the mock, so the mock never shares a process (or a
GIL) with what is measured. `mock_exchange()` starts one on a free port, waits for the base URLs
it prints, and stops it with SIGTERM. `cpu_seconds()` reads the process's CPU time from /proc,
so a run can tell whether the mock was busy all along (the mock was the limit) or idle at times
(the client was).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.peers.common import process_cpu_seconds
from streamer.mock_exchange.config import find_shared_data

DATA = find_shared_data() or Path(__file__).resolve().parents[1].parent / "shared" / "data"
EXCHANGE_INFO = DATA / "exchange_info" / "binance-spot-exchangeInfo-2021-10-12.json"
STREAMER = Path(sys.executable).with_name("streamer")
# Fast as the client reads, and none of Binance's limits that would cut a long run short.
FULL_SPEED = (
    "--speed=max",
    "--ping-interval=0",
    "--lifetime=0",
    "--max-messages=0",
    "--max-attempts=0",
)


@dataclass(frozen=True)
class MockProcess:
    pid: int
    ws_url: str
    rest_url: str

    def cpu_seconds(self) -> float:
        """User plus system CPU seconds the mock has used so far."""
        return process_cpu_seconds(self.pid)


@contextmanager
def only_symbols(*symbols: str) -> Iterator[Path]:
    """A data folder with the recorded exchangeInfo and only these symbols' trade files.

    The mock reads every recording at start, in a thread of its own; with only the measured
    symbols there, none of that reading competes with the frames being measured.
    """
    with tempfile.TemporaryDirectory(prefix="bench-data-") as folder:
        root = Path(folder)
        (root / "trades").mkdir()
        (root / "exchange_info").symlink_to(DATA / "exchange_info")
        for symbol in symbols:
            paths = list((DATA / "trades").glob(f"{symbol}-*"))
            if not paths:
                raise FileNotFoundError(f"no recorded trades of {symbol} in {DATA / 'trades'}")
            for path in paths:
                (root / "trades" / path.name).symlink_to(path)
        yield root


@contextmanager
def mock_exchange(*flags: str) -> Iterator[MockProcess]:
    """A running `streamer mock-exchange --port 0 FLAGS...`, stopped on exit."""
    process = subprocess.Popen(
        [str(STREAMER), "mock-exchange", "--port=0", *flags],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        urls = _read_urls(process)
        yield MockProcess(process.pid, urls["WS:"], urls["REST:"])
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _read_urls(process: subprocess.Popen[str]) -> dict[str, str]:
    assert process.stdout is not None
    urls: dict[str, str] = {}
    for line in process.stdout:
        label, _, url = line.partition(" ")
        if label in ("REST:", "WS:"):
            urls[label] = url.strip()
        if len(urls) == 2:
            return urls
    raise RuntimeError(f"the mock exchange exited before listening (code {process.wait(1)})")
