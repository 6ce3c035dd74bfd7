"""What a mock exchange is told at start: where its data is, how fast it plays, its limits.

Binance's limits are the defaults so that a client tested against the mock meets the same walls in
production; tests shrink them (a ping every 10 ms, a lifetime of half a second) instead of waiting.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DATA_ENV = "STREAMER_MOCK_DATA"
SAMPLE_DIR = Path(__file__).resolve().parent / "sample"
"""Half an hour of real recorded trades for a few symbols, shipped in the package, so that an
installed `streamer demo` replays real data without the full recording beside it."""


@dataclass(frozen=True)
class Limits:
    """Binance's per-connection and per-client limits; `None` switches one off.

    `request_weight` is the REST weight an IP may use per minute (counted, and sent back in
    `X-MBX-USED-WEIGHT-1M`, even when off).
    """

    max_streams: int | None = 1024
    max_messages_per_s: int | None = 5
    ping_interval: float | None = 20.0
    pong_timeout: float = 60.0
    lifetime: float | None = 24 * 3600.0
    max_connection_attempts: int | None = 300
    attempts_window: float = 300.0
    request_weight: int | None = 6000


@dataclass(frozen=True)
class MockConfig:
    """How to run one mock exchange.

    `speed` scales the recorded pace (2.0 plays twice as fast); `None` plays as fast as the
    client reads. `synthetic_rate` is the trades per second (at speed 1) of symbols without data.
    """

    host: str = "127.0.0.1"
    port: int = 0
    data_dir: Path | None = None
    exchange_info: Path | None = None
    speed: float | None = 1.0
    synthetic_rate: float = 1.0
    seed: int = 0
    limits: Limits = field(default_factory=Limits)
    shutdown_grace: float = 1.0

    def __post_init__(self) -> None:
        if self.speed is not None and self.speed <= 0:
            raise ValueError(
                f"speed must be positive or None (as fast as possible), not {self.speed}"
            )
        if self.synthetic_rate <= 0:
            raise ValueError(f"synthetic_rate must be positive, not {self.synthetic_rate}")

    def resolved_data_dir(self) -> Path:
        """The data folder: the configured one, else $STREAMER_MOCK_DATA, else ../shared/data,
        else the sample inside the package."""
        if self.data_dir is not None:
            return self.data_dir
        env = os.environ.get(DATA_ENV)
        if env:
            return Path(env)
        return find_shared_data() or SAMPLE_DIR


def find_shared_data() -> Path | None:
    """The `shared/data` folder beside the checkout, searched from here and from the package."""
    starts = [Path.cwd().resolve(), Path(__file__).resolve().parent]
    for start in starts:
        for folder in (start, *start.parents):
            candidate = folder / "shared" / "data"
            if (candidate / "trades").is_dir() or (candidate / "exchange_info").is_dir():
                return candidate
    return None
