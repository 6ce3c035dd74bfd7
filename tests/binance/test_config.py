"""Tests for streamer.binance.config."""

from __future__ import annotations

import pytest

from streamer.binance.config import StreamerConfig
from streamer.config import Settings


def test_stream_url_carries_streams_and_time_unit() -> None:
    """The combined URL lists the streams and asks for the configured time unit."""
    config = StreamerConfig(ws_url="ws://host:1/", time_unit="MICROSECOND")
    assert config.stream_url(["a@trade", "b@trade"]) == (
        "ws://host:1/stream?streams=a@trade/b@trade&timeUnit=MICROSECOND"
    )


def test_stream_url_percent_encodes_non_ascii_stream_names() -> None:
    """A Unicode symbol's stream goes into the URL percent-encoded as UTF-8, as Binance takes it."""
    config = StreamerConfig(ws_url="ws://host:1")
    assert config.stream_url(["这@trade", "ethusdt@trade"]) == (
        "ws://host:1/stream?streams=%E8%BF%99@trade/ethusdt@trade"
    )


def test_endpoints_come_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """STREAMER_WS_URL and STREAMER_REST_URL reach the streaming config."""
    monkeypatch.setenv("STREAMER_WS_URL", "ws://127.0.0.1:9")
    monkeypatch.setenv("STREAMER_REST_URL", "http://127.0.0.1:9")
    config = StreamerConfig.from_settings(Settings())
    assert (config.ws_url, config.rest_url) == ("ws://127.0.0.1:9", "http://127.0.0.1:9")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("streams_per_connection", 0),
        ("streams_per_connection", 1025),
        ("messages_per_second", 6),
        ("backfill_concurrency", 0),
        ("backfill_weight_per_minute", 24),
    ],
)
def test_limits_beyond_the_exchange_are_refused(field: str, value: int) -> None:
    """A stream cap or message rate the exchange would punish is refused with a clear error."""
    with pytest.raises(ValueError, match=field):
        StreamerConfig(**{field: value})  # type: ignore[arg-type]


def test_default_back_fill_budget_stays_under_the_exchange_weight_limit() -> None:
    """By default one gap replays at most 5,000 trades and back-fills spend under 6,000/min."""
    config = StreamerConfig()
    assert config.max_backfill == 5_000
    assert config.backfill_weight_per_minute < 6_000
