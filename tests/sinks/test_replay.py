"""Tests for streamer.sinks.replay: reading a sink back, as `streamer tail --from` does."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from typer.testing import CliRunner

from streamer.cli import app
from streamer.events import GapNotice
from streamer.sinks import SinkEvent
from streamer.sinks.replay import ReplayFrom, follow_sink
from streamer.sinks.urls import InvalidSinkUrl, sink_from_url
from tests.fixtures.brokers import NatsTarget, RedisTarget
from tests.polling import eventually
from tests.sinks.events import publish, trade, trades

Target = NatsTarget | RedisTarget


@pytest.fixture(params=["nats", "redis"])
def target(request: pytest.FixtureRequest) -> Target:
    """A stream (NATS) or key prefix (Redis) of this test's own on the real server."""
    fixture: Target = request.getfixturevalue(f"{request.param}_target")
    return fixture


async def publish_to(url: str, events: Sequence[SinkEvent]) -> None:
    sink, _ = sink_from_url(url)
    await sink.open()
    try:
        await publish(sink, events)
    finally:
        await sink.close()


async def test_replay_from_a_trade_id_reads_what_the_broker_holds_from_there(
    target: Target,
) -> None:
    """Reading back from trade 5 gives trades 5.. and the gap notices after them, in order."""
    url = target.sink_url()
    await publish_to(url, [*trades("ETHUSDT", range(1, 8)), GapNotice("ETHUSDT", 8, 9)])
    await publish_to(url, trades("BTCUSDT", range(1, 8)))
    got: list[dict[str, Any]] = []
    await follow_sink(url, ["ETHUSDT"], ReplayFrom(trade_id=5), got.append, limit=4)
    assert [d.get("trade_id", d.get("first_missing_id")) for d in got] == [5, 6, 7, 8]
    assert [d["kind"] for d in got] == ["trade", "trade", "trade", "gap"]
    assert {d["symbol"] for d in got} == {"ETHUSDT"}


async def test_replay_from_a_time_skips_older_trades(target: Target) -> None:
    """Reading back from a time gives the trades at or after it (the broker's own clock for
    NATS, the trade time for Redis)."""
    url = target.sink_url()
    await publish_to(url, trades("ETHUSDT", range(1, 4)))
    await asyncio.sleep(0.05)
    middle = datetime.now(UTC)
    later = int(middle.timestamp() * 1000) + 1
    await publish_to(
        url, [msgspec.structs.replace(trade("ETHUSDT", i), trade_time=later) for i in range(4, 7)]
    )
    got: list[dict[str, Any]] = []
    await follow_sink(url, [], ReplayFrom(time=middle), got.append, limit=3)
    assert [d["trade_id"] for d in got] == [4, 5, 6]


async def test_live_replay_gives_only_what_arrives_after_it_starts(target: Target) -> None:
    """Without a start, reading back follows new events only."""
    url = target.sink_url()
    await publish_to(url, trades("ETHUSDT", range(1, 4)))
    got: list[dict[str, Any]] = []
    reading = asyncio.ensure_future(follow_sink(url, ["ETHUSDT"], ReplayFrom(), got.append))
    try:
        await asyncio.sleep(0.5)
        await publish_to(url, trades("ETHUSDT", range(4, 6)))
        await eventually(lambda: len(got) == 2)
    finally:
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
    assert [d["trade_id"] for d in got] == [4, 5]


def test_tail_from_a_sink_prints_its_trades(target: Target) -> None:
    """`streamer tail --from URL SYMBOL --since-id N` prints the broker's trades as lines."""
    url = target.sink_url()
    asyncio.run(publish_to(url, trades("ETHUSDT", range(1, 6))))
    result = CliRunner().invoke(
        app, ["tail", "--from", url, "ethusdt", "--since-id", "3", "--limit", "3"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [re.search(r"#(\d+)", line).group(1) for line in lines] == ["3", "4", "5"]  # type: ignore[union-attr]
    assert all("ETHUSDT" in line for line in lines)


def test_tail_from_an_unknown_scheme_is_one_error_line() -> None:
    """A sink that cannot be read back is a usage error naming the ones that can."""
    result = CliRunner().invoke(app, ["tail", "--from", "kafka://127.0.0.1:9092"])
    assert result.exit_code == 2
    assert "nats://" in result.output


def test_a_start_is_an_id_or_a_time_not_both() -> None:
    """Both at once cannot mean anything, so it is refused."""
    with pytest.raises(InvalidSinkUrl, match="not both"):
        ReplayFrom(trade_id=1, time=datetime.now(UTC))
