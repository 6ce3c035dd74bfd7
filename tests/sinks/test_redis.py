"""Tests for streamer.sinks.redis against the real Redis server (a relay in front for outages)."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis.asyncio as aioredis

from streamer.events import GapNotice
from streamer.sinks import SinkError, SinkUnavailable
from streamer.sinks.redis import RedisSink
from streamer.sinks.urls import sink_from_url
from streamer.wire import as_dict
from tests.fixtures.brokers import RedisTarget
from tests.fixtures.relay import relay_to, through
from tests.sinks.consumers import read_redis, xrange
from tests.sinks.events import publish, publish_all, trade, trades


def redis_sink(url: str) -> RedisSink:
    sink, _ = sink_from_url(url)
    assert isinstance(sink, RedisSink)
    return sink


async def test_trades_and_gaps_land_in_per_symbol_streams_as_the_websocket_json(
    redis_target: RedisTarget,
) -> None:
    """Each trade is entry `<trade_id>-0` of `<prefix>:trades:<SYMBOL>` holding the same JSON
    as `/ws/trades`; gap notices go to `<prefix>:gaps:<SYMBOL>`."""
    sink = redis_sink(redis_target.sink_url())
    await publish_all(sink, [trade("ETHUSDT", 7), GapNotice("ETHUSDT", 8, 9), trade("ETHUSDT", 10)])
    client = aioredis.Redis.from_url(redis_target.server)
    try:
        entries = await xrange(client, f"{redis_target.prefix}:trades:ETHUSDT")
        gaps = await xrange(client, f"{redis_target.prefix}:gaps:ETHUSDT")
    finally:
        await client.aclose()
    assert [entry_id for entry_id, _ in entries] == [b"7-0", b"10-0"]
    assert json.loads(entries[0][1][b"data"]) == json.loads(
        json.dumps(as_dict(trade("ETHUSDT", 7)), default=str)
    )
    assert [(i, json.loads(f[b"data"])["kind"]) for i, f in gaps] == [(b"8-0", "gap")]


async def test_a_re_sent_batch_is_dropped_by_redis_and_counted(redis_target: RedisTarget) -> None:
    """Sending the same trades again stores nothing twice; each refusal counts as a duplicate."""
    sink = redis_sink(redis_target.sink_url())
    await publish_all(sink, trades("ETHUSDT", range(1, 6)), trades("ETHUSDT", range(3, 9)))
    received = await read_redis(redis_target)
    assert received["ETHUSDT"].trades == list(range(1, 9))
    assert sink.duplicates == 3


async def test_a_refused_entry_is_an_error_not_a_retry_and_the_others_land(
    redis_target: RedisTarget,
) -> None:
    """An entry Redis refuses for good (its key is not a stream) fails the batch with a
    `SinkError` that is not `SinkUnavailable`, while the batch's other symbols are stored."""
    client = aioredis.Redis.from_url(redis_target.server)
    await client.set(f"{redis_target.prefix}:trades:BTCUSDT", "not a stream")
    sink = redis_sink(redis_target.sink_url())
    await sink.open()
    try:
        with pytest.raises(SinkError, match="WRONGTYPE") as refused:
            await publish(sink, [trade("BTCUSDT", 1), trade("ETHUSDT", 1), trade("ETHUSDT", 2)])
        assert not isinstance(refused.value, SinkUnavailable)
        entries = await xrange(client, f"{redis_target.prefix}:trades:ETHUSDT")
    finally:
        await sink.close()
        await client.aclose()
    assert [entry_id for entry_id, _ in entries] == [b"1-0", b"2-0"]


async def test_streams_are_capped_at_maxlen(redis_target: RedisTarget) -> None:
    """`maxlen` keeps each stream near that many entries (Redis trims whole nodes: `~`)."""
    sink = redis_sink(redis_target.sink_url(maxlen=100))
    await sink.open()
    try:
        for start in range(0, 3000, 500):
            await publish(sink, trades("ETHUSDT", range(start + 1, start + 501)))
    finally:
        await sink.close()
    received = await read_redis(redis_target)
    assert 100 <= len(received["ETHUSDT"].trades) < 3000
    assert received["ETHUSDT"].trades[-1] == 3000


async def test_an_outage_is_unavailable_and_the_same_batch_lands_once_after_it(
    redis_target: RedisTarget,
) -> None:
    """While the server cannot be reached, publishing raises `SinkUnavailable`; afterwards the
    same batch is stored once."""
    async with relay_to(redis_target.server) as relay:
        sink = redis_sink(redis_target.sink_url(through(redis_target.server, relay), timeout=1))
        await sink.open()
        try:
            await publish(sink, trades("ETHUSDT", range(1, 4)))
            await relay.stop()
            batch = trades("ETHUSDT", range(4, 8))
            with pytest.raises(SinkUnavailable):
                await publish(sink, batch)
            await relay.start()
            await publish(sink, batch)
        finally:
            await sink.close()
    received = await read_redis(redis_target)
    assert received["ETHUSDT"].trades == list(range(1, 8))


async def test_a_stalled_server_is_unavailable_not_a_hang(redis_target: RedisTarget) -> None:
    """A server that stops answering makes the publish fail after its timeout, to be retried."""
    async with relay_to(redis_target.server) as relay:
        sink = redis_sink(redis_target.sink_url(through(redis_target.server, relay), timeout=0.5))
        await sink.open()
        try:
            relay.stall()
            with pytest.raises(SinkUnavailable):
                await publish(sink, trades("ETHUSDT", range(1, 4)))
            relay.resume()
            await asyncio.sleep(0)
        finally:
            await sink.close()


async def test_a_server_down_at_open_is_unavailable(redis_target: RedisTarget) -> None:
    """Opening a sink whose server is not there raises `SinkUnavailable`, for the runner to
    retry."""
    async with relay_to(redis_target.server) as relay:
        url = redis_target.sink_url(through(redis_target.server, relay), timeout=1)
        await relay.stop()
        sink = redis_sink(url)
        with pytest.raises(SinkUnavailable):
            await sink.open()
        await sink.close()
