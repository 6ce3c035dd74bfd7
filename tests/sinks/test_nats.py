"""Tests for streamer.sinks.nats against the real NATS server (a relay in front for outages)."""

from __future__ import annotations

import asyncio
import json

import nats
import pytest
from nats.js.api import DeliverPolicy

from streamer.events import GapNotice
from streamer.sinks import SinkEvent, SinkUnavailable
from streamer.sinks import nats as nats_sinks
from streamer.sinks.nats import NatsSink
from streamer.sinks.urls import sink_from_url
from streamer.wire import as_dict, encode_events
from tests.fixtures.brokers import NatsTarget
from tests.fixtures.relay import relay_to, through
from tests.sinks.consumers import read_nats
from tests.sinks.events import publish, publish_all, trade, trades


def nats_sink(url: str) -> NatsSink:
    sink, _ = sink_from_url(url)
    assert isinstance(sink, NatsSink)
    return sink


async def test_trades_and_gaps_are_published_on_per_symbol_subjects_with_message_ids(
    nats_target: NatsTarget,
) -> None:
    """A trade goes to `<prefix>.trades.<SYMBOL>` with `Nats-Msg-Id: <SYMBOL>:<trade_id>` and the
    `/ws/trades` JSON; a gap notice to `<prefix>.gaps.<SYMBOL>`, in the same stream, in order."""
    sink = nats_sink(nats_target.sink_url())
    await publish_all(sink, [trade("ETHUSDT", 7), GapNotice("ETHUSDT", 8, 9), trade("ETHUSDT", 10)])
    client = await nats.connect(nats_target.server)
    try:
        js = client.jetstream()
        sub = await js.subscribe(
            f"{nats_target.prefix}.>",
            stream=nats_target.stream,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.ALL,
        )
        messages = [await sub.next_msg(timeout=10) for _ in range(3)]
    finally:
        await client.close()
    assert [m.subject for m in messages] == [
        f"{nats_target.prefix}.trades.ETHUSDT",
        f"{nats_target.prefix}.gaps.ETHUSDT",
        f"{nats_target.prefix}.trades.ETHUSDT",
    ]
    assert [(m.headers or {}).get("Nats-Msg-Id") for m in messages] == [
        "ETHUSDT:7",
        "ETHUSDT:gap:8-9",
        "ETHUSDT:10",
    ]
    assert json.loads(messages[0].data) == json.loads(
        json.dumps(as_dict(trade("ETHUSDT", 7)), default=str)
    )


async def test_a_re_sent_batch_is_dropped_by_jetstream_and_counted(
    nats_target: NatsTarget,
) -> None:
    """Publishing the same trades again stores nothing twice (the message id window)."""
    sink = nats_sink(nats_target.sink_url())
    await publish_all(sink, trades("ETHUSDT", range(1, 6)), trades("ETHUSDT", range(3, 9)))
    received = await read_nats(nats_target)
    assert received["ETHUSDT"].trades == list(range(1, 9))
    assert sink.duplicates == 3


async def test_a_batch_wider_than_the_window_lands_whole_and_in_order(
    nats_target: NatsTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch is sent in windows of at most `WINDOW` messages, each acknowledged before the
    next; every trade lands once and in order, and re-sent ones are counted in every window."""
    monkeypatch.setattr(nats_sinks, "WINDOW", 4)
    sink = nats_sink(nats_target.sink_url())
    await publish_all(sink, trades("ETHUSDT", range(1, 8)), trades("ETHUSDT", range(1, 12)))
    received = await read_nats(nats_target)
    assert received["ETHUSDT"].trades == list(range(1, 12))
    assert sink.duplicates == 7


async def test_a_stream_deleted_under_the_sink_is_unavailable_then_created_again(
    nats_target: NatsTarget,
) -> None:
    """When no stream answers for the subjects, the batch is not confirmed (`SinkUnavailable`)
    and the retry creates the stream again and lands the batch."""
    sink = nats_sink(nats_target.sink_url())
    await sink.open()
    client = await nats.connect(nats_target.server)
    try:
        await publish(sink, trades("ETHUSDT", range(1, 3)))
        await client.jetstream().delete_stream(nats_target.stream)
        with pytest.raises(SinkUnavailable, match="no stream answered"):
            await publish(sink, trades("ETHUSDT", range(3, 5)))
        await publish(sink, trades("ETHUSDT", range(3, 5)))
    finally:
        await sink.close()
        await client.close()
    received = await read_nats(nats_target)
    assert received["ETHUSDT"].trades == [3, 4]


async def test_the_stream_is_created_then_updated_to_the_configured_limits(
    nats_target: NatsTarget,
) -> None:
    """At open the stream exists with the URL's limits, even when it existed with others."""
    for max_age in (600, 300):
        sink = nats_sink(nats_target.sink_url(max_age=max_age, max_bytes=10_000_000))
        await sink.open()
        await sink.close()
    client = await nats.connect(nats_target.server)
    try:
        info = await client.jetstream().stream_info(nats_target.stream)
    finally:
        await client.close()
    assert info.config.max_age == 300
    assert info.config.max_bytes == 10_000_000
    prefix = nats_target.prefix
    assert info.config.subjects == [f"{prefix}.trades.>", f"{prefix}.gaps.>"]


async def test_an_outage_is_unavailable_and_the_same_batch_lands_once_after_it(
    nats_target: NatsTarget,
) -> None:
    """While the server cannot be reached a batch is not acknowledged (`SinkUnavailable`);
    sent again once it is back, every trade is stored once, in order."""
    async with relay_to(nats_target.server) as relay:
        sink = nats_sink(nats_target.sink_url(through(nats_target.server, relay), timeout=1))
        await sink.open()
        try:
            await publish(sink, trades("ETHUSDT", range(1, 4)))
            await relay.stop()
            batch = trades("ETHUSDT", range(4, 8))
            with pytest.raises(SinkUnavailable):
                await publish(sink, batch)
            await relay.start()
            for _ in range(50):
                try:
                    await publish(sink, batch)
                    break
                except SinkUnavailable:
                    continue
        finally:
            await sink.close()
    received = await read_nats(nats_target)
    assert received["ETHUSDT"].trades == list(range(1, 8))


async def test_a_server_down_at_open_is_unavailable(nats_target: NatsTarget) -> None:
    """Opening a sink whose server is not there raises `SinkUnavailable`, for the runner to
    retry."""
    async with relay_to(nats_target.server) as relay:
        url = nats_target.sink_url(through(nats_target.server, relay))
        await relay.stop()
        sink = nats_sink(url)
        with pytest.raises(SinkUnavailable):
            await sink.open()
        await sink.close()


def test_frames_are_the_bytes_nats_py_would_send() -> None:
    """The batch's HPUB commands equal what nats-py's own `publish` with a message id writes."""
    from nats.protocol import command

    events: list[SinkEvent] = [trade("ETHUSDT", 7), GapNotice("ETHUSDT", 8, 9)]
    payloads = encode_events(events)
    ids = ["ETHUSDT:7", "ETHUSDT:gap:8-9"]
    subjects = ["p.trades.ETHUSDT", "p.gaps.ETHUSDT"]
    expected = b"".join(
        command.hpub_cmd(
            subject, "_INBOX.x", f"NATS/1.0\r\nNats-Msg-Id: {msg_id}\r\n\r\n".encode(), payload
        )
        for subject, msg_id, payload in zip(subjects, ids, payloads, strict=True)
    )
    assert nats_sinks.hpub_frames("p", events, payloads, "_INBOX.x") == expected


async def test_a_re_send_after_the_duplicate_window_is_still_dropped(
    nats_target: NatsTarget,
) -> None:
    """Trades the stream already holds are not stored again, even once JetStream's duplicate
    window is over: the sink asks the stream for each symbol's last trade."""
    url = nats_target.sink_url(duplicate_window=0.2)
    await publish_all(nats_sink(url), trades("ETHUSDT", range(1, 6)))
    await asyncio.sleep(0.5)  # past the window: JetStream alone would store them again
    again = nats_sink(url)
    await publish_all(again, trades("ETHUSDT", range(3, 9)))
    received = (await read_nats(nats_target))["ETHUSDT"]
    assert received.trades == list(range(1, 9))
    assert again.duplicates == 3
