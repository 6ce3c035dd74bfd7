"""Tests for streamer.sinks.urls: sink URLs as users write them."""

from __future__ import annotations

import pytest

from streamer.sinks.nats import NatsSink
from streamer.sinks.redis import RedisSink
from streamer.sinks.runner import RunnerOptions
from streamer.sinks.urls import InvalidSinkUrl, parse_sink_url, sink_from_url


def test_runner_parameters_are_taken_out_whatever_the_sink() -> None:
    """`batch`, `retry_cap` and `max_lag` configure the runner; the rest stays with the sink."""
    url, options = parse_sink_url("redis://127.0.0.1:6379/0?max_lag=9&prefix=t1&batch=7")
    assert options == RunnerOptions(batch=7, max_lag=9.0)
    assert dict(url.params) == {"prefix": "t1"}
    assert url.text == "redis://127.0.0.1:6379/0?prefix=t1"


def test_the_label_hides_the_password_and_parameters() -> None:
    """Logs, metrics and the tree never show a password."""
    sink, _ = sink_from_url("redis://:secret@127.0.0.1:6379/2?maxlen=10")
    assert isinstance(sink, RedisSink)
    assert sink.name == "redis://127.0.0.1:6379/2"
    assert sink.maxlen == 10


def test_a_nats_url_configures_its_stream() -> None:
    """Stream name, subjects and limits come from the URL's parameters."""
    sink, _ = sink_from_url("nats://127.0.0.1:4222?stream=S1&prefix=p1&max_age=60&max_bytes=1000")
    assert isinstance(sink, NatsSink)
    assert sink.config.name == "S1"
    assert sink.config.subjects == ["p1.trades.>", "p1.gaps.>"]
    assert (sink.config.max_age, sink.config.max_bytes) == (60.0, 1000)
    assert sink.config.duplicate_window == 60.0


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "kafka://127.0.0.1:9092",
            "must start with one of nats://, parquet://, redis://, rediss://",
        ),
        ("redis://127.0.0.1:6379?colour=red", "unknown parameter colour"),
        ("nats://127.0.0.1:4222?max_age=soon", "max_age='soon' is not a number"),
        ("redis://127.0.0.1:6379?batch=0", "batch must be at least 1"),
        ("redis://127.0.0.1:6379?max_lag=0", "max_lag must be a positive"),
        ("redis://127.0.0.1:99999", "Port out of range"),
        ("nats://127.0.0.1:4222?storage=tape", "storage must be file or memory"),
    ],
)
def test_a_bad_sink_url_is_one_clear_error(url: str, message: str) -> None:
    """Every mistake in a sink URL is refused at start, saying what is wrong."""
    with pytest.raises(InvalidSinkUrl, match=message):
        sink_from_url(url)


def test_a_queue_size_is_refused_with_what_replaced_it() -> None:
    """`queue=` no longer means anything: saying so beats ignoring it."""
    with pytest.raises(InvalidSinkUrl, match="--journal-max-bytes"):
        parse_sink_url("nats://127.0.0.1:4222?queue=1000")


def test_two_sinks_into_one_server_are_told_apart_by_stream_and_prefix() -> None:
    """Sinks into different streams or prefixes of one server have different names (logs,
    metrics, journal cursors); the defaults keep the plain server URL."""
    names = [
        sink_from_url(url)[0].name
        for url in (
            "nats://127.0.0.1:4222",
            "nats://127.0.0.1:4222?stream=OTHER&prefix=other",
            "redis://127.0.0.1:6379/0",
            "redis://127.0.0.1:6379/0?prefix=other",
        )
    ]
    assert names == [
        "nats://127.0.0.1:4222",
        "nats://127.0.0.1:4222?stream=OTHER&prefix=other",
        "redis://127.0.0.1:6379/0",
        "redis://127.0.0.1:6379/0?prefix=other",
    ]
