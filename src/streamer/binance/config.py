"""Binance's side of the engine's configuration: endpoints and the exchange's published limits."""

from __future__ import annotations

from dataclasses import dataclass

from streamer.binance.protocol import (
    CONNECT_WINDOW_S,
    CONNECTS_PER_WINDOW,
    CONTROL_MESSAGES_PER_SECOND,
    HISTORICAL_TRADES_WEIGHT,
    MAX_STREAMS_PER_CONNECTION,
    MESSAGES_PER_SECOND,
)
from streamer.config import BINANCE_REST_URL, BINANCE_WS_URL, Settings
from streamer.stream.config import EngineConfig
from streamer.symbols import url_quote


@dataclass(frozen=True)
class StreamerConfig(EngineConfig):
    """How connections to Binance are made and paced, beside the engine's own tunables.

    `streams_per_connection` 1 reproduces one connection per symbol; the default keeps ~1,700
    symbols on 9 connections, far under the 1,024-stream cap and the 300-connects/5-min limit.
    `dead_after` must exceed the server's 20 s ping period; `rotate_after` stays under its 24 h cut.
    Every REST request of the hub (back-fills, probes) spends from one budget of
    `rest_weight_limit` per clock minute, corrected by the exchange's `X-MBX-USED-WEIGHT-1M`
    and held back for everyone by a 429/418 (`streamer.binance.budget`).
    `messages_per_second` paces what a connection sends (requests and pongs alike): 4 by
    default, a margin under the exchange's 5, at most 5.
    `receive_buffer` caps the socket's kernel buffer and so the trades handled per read: a
    backlog is then worked off in bursts that stay in the CPU cache and reach subscribers
    sooner, instead of megabyte reads whose first trade waits for thousands of others.
    """

    ws_url: str = BINANCE_WS_URL
    rest_url: str = BINANCE_REST_URL
    streams_per_connection: int = 200
    streams_per_message: int = 200
    messages_per_second: int = CONTROL_MESSAGES_PER_SECOND
    send_margin: float = 0.1
    connects_per_window: int = CONNECTS_PER_WINDOW
    connect_window: float = CONNECT_WINDOW_S
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    handshake_timeout: float = 10.0
    dead_after: float = 50.0
    rotate_after: float = 23.5 * 3600
    rest_weight_limit: int = 5_000
    receive_buffer: int = 256 * 1024

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.streams_per_connection <= MAX_STREAMS_PER_CONNECTION:
            raise ValueError(
                f"streams_per_connection must be 1..{MAX_STREAMS_PER_CONNECTION}, "
                f"got {self.streams_per_connection}"
            )
        if self.backfill_weight_per_minute < HISTORICAL_TRADES_WEIGHT:
            raise ValueError(
                f"backfill_weight_per_minute must be at least {HISTORICAL_TRADES_WEIGHT}, "
                f"got {self.backfill_weight_per_minute}"
            )
        if not 1 <= self.messages_per_second <= MESSAGES_PER_SECOND:
            raise ValueError(
                f"messages_per_second must be 1..{MESSAGES_PER_SECOND}, "
                f"got {self.messages_per_second}"
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> StreamerConfig:
        """The endpoints the command line or environment chose, with every other default."""
        return cls(ws_url=settings.ws_url, rest_url=settings.rest_url)

    def stream_url(self, streams: list[str]) -> str:
        """The combined-stream URL carrying `streams` from the first byte, percent-encoded."""
        names = "/".join(url_quote(name) for name in streams)
        url = f"{self.ws_url.rstrip('/')}/stream?streams={names}"
        if self.time_unit:
            url += f"&timeUnit={self.time_unit}"
        return url
