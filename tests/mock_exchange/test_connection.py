"""A websocket client of the mock: trade streams, control messages, limits and connection faults."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from picows import WSMsgType, ws_connect
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from streamer.mock_exchange import Limits, MockConfig, MockExchange
from streamer.mock_exchange.connection import fed_stream
from streamer.mock_exchange.market import Market
from tests.mock_exchange.conftest import Probe, until

QUIET = Limits(ping_interval=None, lifetime=None, max_messages_per_s=None)


@asynccontextmanager
async def running(tiny_data: Path, **options: Any) -> AsyncIterator[MockExchange]:
    options.setdefault("limits", QUIET)
    options.setdefault("speed", None)
    async with MockExchange(MockConfig(data_dir=tiny_data, **options)) as mock:
        yield mock


def client(mock: MockExchange, path: str) -> Any:
    return connect(f"{mock.ws_url}{path}", max_queue=None, close_timeout=1)


async def receive(ws: ClientConnection, count: int) -> list[Any]:
    return [json.loads(await ws.recv()) for _ in range(count)]


async def until_closed(ws: ClientConnection) -> None:
    """Read until the server ends the connection (its close code is then `ws.close_code`)."""
    with contextlib.suppress(ConnectionClosed):
        while True:
            await ws.recv()


async def reply_to(ws: ClientConnection, request: dict[str, Any]) -> Any:
    """Send a control message and return its answer, skipping the trades before it."""
    await ws.send(json.dumps(request))
    while True:
        message = json.loads(await ws.recv())
        if "id" in message:
            return message


def test_stream_names() -> None:
    """Only `<lower-case symbol>@trade` or `@aggTrade` names a stream the mock can feed."""
    assert fed_stream("bnbbtc@trade") == ("BNBBTC", "trade")
    assert fed_stream("bnbbtc@aggTrade") == ("BNBBTC", "aggTrade")
    assert fed_stream("这是测试币456@trade") == ("这是测试币456", "trade")
    assert fed_stream("BNBBTC@trade") is None
    assert fed_stream("bnbbtc@depth") is None
    assert fed_stream("@trade") is None


async def test_raw_stream_replays_recorded_trades_gap_free(tiny_data: Path) -> None:
    """/ws/<stream> sends the recording in id order, holes filled, then loops on later ids."""
    async with running(tiny_data) as mock, client(mock, "/ws/bnbbtc@trade") as ws:
        trades = await receive(ws, 25)
    assert [t["t"] for t in trades] == list(range(100, 125))
    assert {t["e"] for t in trades} == {"trade"}
    assert set(trades[0]) == {"e", "E", "s", "t", "p", "q", "T", "m", "M"}


async def test_combined_stream_wraps_each_event(tiny_data: Path) -> None:
    """/stream?streams=... wraps events as {"stream", "data"} for every stream named."""
    path = "/stream?streams=bnbbtc@trade/ethbtc@trade"
    async with running(tiny_data) as mock, client(mock, path) as ws:
        events = await receive(ws, 20)
    assert {e["stream"] for e in events} == {"bnbbtc@trade", "ethbtc@trade"}
    assert [e["data"]["t"] for e in events if e["stream"] == "ethbtc@trade"][:3] == [500, 501, 502]


async def test_microsecond_stream(tiny_data: Path) -> None:
    """timeUnit=MICROSECOND in the URL gives E and T in microseconds."""
    async with (
        running(tiny_data) as mock,
        client(mock, "/ws/bnbbtc@trade?timeUnit=MICROSECOND") as ws,
    ):
        first = (await receive(ws, 1))[0]
    assert first["T"] == 1_559_520_000_000_000


async def test_live_subscribe_and_unsubscribe(tiny_data: Path) -> None:
    """SUBSCRIBE starts a stream on an open connection; after UNSUBSCRIBE's answer it is silent."""
    async with running(tiny_data, speed=1000.0) as mock, client(mock, "/stream") as ws:
        answer = await reply_to(ws, {"method": "SUBSCRIBE", "params": ["xrpusdt@trade"], "id": 1})
        assert answer == {"result": None, "id": 1}
        event = json.loads(await ws.recv())
        assert event["stream"] == "xrpusdt@trade"
        answer = await reply_to(ws, {"method": "UNSUBSCRIBE", "params": ["xrpusdt@trade"], "id": 2})
        assert answer == {"result": None, "id": 2}
        listed = await reply_to(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 3})
    assert listed == {"result": [], "id": 3}


async def test_set_property_switches_to_raw_events(tiny_data: Path) -> None:
    """After SET_PROPERTY combined false, a combined connection receives bare events."""
    async with running(tiny_data, speed=1000.0) as mock, client(mock, "/stream") as ws:
        await reply_to(ws, {"method": "SET_PROPERTY", "params": ["combined", False], "id": 1})
        await reply_to(ws, {"method": "SUBSCRIBE", "params": ["xrpusdt@trade"], "id": 2})
        event = json.loads(await ws.recv())
    assert event["e"] == "trade"
    assert "stream" not in event


async def test_unknown_stream_is_listed_but_silent(tiny_data: Path) -> None:
    """Like Binance, a stream name that matches no market is accepted and carries nothing."""
    async with running(tiny_data) as mock, client(mock, "/ws/nopebtc@trade") as ws:
        listed = await reply_to(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 1})
        assert listed == {"result": ["nopebtc@trade"], "id": 1}
        await until(lambda: len(mock.connections) == 1)
        assert next(iter(mock.connections.values())).sent == 0


async def test_a_new_connection_starts_where_the_market_is(tiny_data: Path) -> None:
    """A client that reconnects gets later trades, never the ones the first connection saw."""
    async with running(tiny_data) as mock:
        async with client(mock, "/ws/bnbbtc@trade") as ws:
            seen = await receive(ws, 5)
        async with client(mock, "/ws/bnbbtc@trade") as ws:
            later = await receive(ws, 1)
    assert later[0]["t"] > seen[-1]["t"]


async def test_too_many_messages_close_with_1008(tiny_data: Path) -> None:
    """Going over the incoming message rate closes the connection with code 1008."""
    limits = Limits(ping_interval=None, lifetime=None, max_messages_per_s=2)
    async with running(tiny_data, limits=limits) as mock, client(mock, "/ws") as ws:
        for request_id in range(3):
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": request_id}))
        await until_closed(ws)
    assert ws.close_code == 1008


async def test_server_pings_and_drops_without_pong(tiny_data: Path) -> None:
    """The server pings every interval and closes with 1008 once no pong came in time."""
    limits = Limits(ping_interval=0.01, pong_timeout=0.05, lifetime=None, max_messages_per_s=None)
    async with running(tiny_data, limits=limits) as mock:
        transport, probe = await ws_connect(Probe, f"{mock.ws_url}/ws", enable_auto_pong=False)
        assert isinstance(probe, Probe)
        await probe.next(WSMsgType.PING)
        closing = await probe.next(WSMsgType.CLOSE)
        transport.disconnect()
        await asyncio.wait_for(probe.closed.wait(), 10)
    assert int.from_bytes(closing[:2], "big") == 1008
    assert b"Pong timeout" in closing


async def test_answered_pings_keep_the_connection(tiny_data: Path) -> None:
    """A client that answers every ping is still served after many ping intervals."""
    limits = Limits(ping_interval=0.01, pong_timeout=0.05, lifetime=None, max_messages_per_s=None)
    async with running(tiny_data, limits=limits) as mock:
        transport, probe = await ws_connect(
            lambda: Probe(pong=True), f"{mock.ws_url}/ws", enable_auto_pong=False
        )
        assert isinstance(probe, Probe)
        for _ in range(12):
            await probe.next(WSMsgType.PING)
        transport.send(WSMsgType.TEXT, b'{"method":"LIST_SUBSCRIPTIONS","id":9}')
        answer = await probe.next(WSMsgType.TEXT)
        transport.disconnect()
    assert json.loads(answer) == {"result": [], "id": 9}


async def test_connection_lifetime_ends_with_1001(tiny_data: Path) -> None:
    """At the end of its lifetime a connection is closed with 1001 (going away)."""
    limits = Limits(ping_interval=None, lifetime=0.05, max_messages_per_s=None)
    async with running(tiny_data, limits=limits) as mock, client(mock, "/ws") as ws:
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert ws.close_code == 1001


async def test_drop_cuts_without_close_frame(tiny_data: Path) -> None:
    """The drop fault ends the connection abruptly: no close frame (code 1006 at the client)."""
    async with running(tiny_data) as mock, client(mock, "/ws/bnbbtc@trade") as ws:
        await receive(ws, 1)
        assert mock.faults.drop() == 1
        await until_closed(ws)
    assert ws.close_code == 1006


async def test_drop_one_connection_by_id(tiny_data: Path) -> None:
    """Dropping one connection by id leaves the others streaming."""
    async with (
        running(tiny_data, speed=1000.0) as mock,
        client(mock, "/ws/xrpusdt@trade") as first,
        client(mock, "/ws") as second,
    ):
        await until(lambda: len(mock.connections) == 2)
        mock.faults.drop(min(mock.connections))
        await until_closed(first)
        answer = await reply_to(second, {"method": "LIST_SUBSCRIPTIONS", "id": 1})
    assert first.close_code == 1006
    assert answer == {"result": [], "id": 1}


async def test_stall_and_resume(tiny_data: Path) -> None:
    """A stalled connection sends nothing and answers nothing until it is resumed."""
    async with running(tiny_data, speed=1000.0) as mock, client(mock, "/ws/xrpusdt@trade") as ws:
        await receive(ws, 1)
        mock.faults.stall()
        await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 7}))
        connection = next(iter(mock.connections.values()))
        sent = connection.sent
        await asyncio.sleep(0.05)
        assert connection.sent == sent
        mock.faults.resume()
        answer = await reply_to(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 8})
    assert answer["id"] in (7, 8)


async def test_malformed_frame_then_the_stream_goes_on(tiny_data: Path) -> None:
    """The malformed-frame fault sends one text message that is not JSON; trades follow."""
    async with running(tiny_data, speed=1000.0) as mock, client(mock, "/ws/xrpusdt@trade") as ws:
        await until(lambda: len(mock.connections) == 1)
        mock.faults.malformed_frame()
        while True:
            text = await ws.recv()
            try:
                json.loads(text)
            except ValueError:
                break
        after = json.loads(await ws.recv())
    assert after["e"] == "trade"


async def test_truncated_frame_breaks_the_connection(tiny_data: Path) -> None:
    """The truncated-frame fault sends half a frame and cuts the connection."""
    async with running(tiny_data) as mock, client(mock, "/ws") as ws:
        await until(lambda: len(mock.connections) == 1)
        mock.faults.truncated_frame()
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert ws.close_code == 1006


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/ws", {"e": "serverShutdown"}),
        ("/stream", {"stream": "!serverShutdown", "data": {"e": "serverShutdown"}}),
    ],
)
async def test_server_shutdown_event_then_close(
    tiny_data: Path, path: str, expected: dict[str, Any]
) -> None:
    """serverShutdown arrives in the connection's shape, then the server closes with 1001."""
    async with running(tiny_data) as mock, client(mock, path) as ws:
        await until(lambda: len(mock.connections) == 1)
        mock.faults.server_shutdown(close_after=0.0)
        event = json.loads(await ws.recv())
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    body = event.get("data", event)
    assert body.pop("E") > 0
    assert event == expected
    assert ws.close_code == 1001


async def test_skipped_ids_are_a_gap_the_history_fills(tiny_data: Path) -> None:
    """Skipped ids never reach the stream, and historicalTrades serves them."""
    async with running(tiny_data) as mock:
        skipped = mock.faults.skip_ids("bnbbtc", 3)
        async with client(mock, "/ws/bnbbtc@trade") as ws:
            ids = [t["t"] for t in await receive(ws, 5)]
        market = mock.exchange.market("BNBBTC")
        assert market is not None
        history = market.history(market.index_of(skipped[0]), 3, micro=False)
    assert skipped == [100, 101, 102]
    assert ids == [103, 104, 105, 106, 107]
    assert [t["id"] for t in history] == skipped


async def test_duplicated_ids_arrive_twice(tiny_data: Path) -> None:
    """Duplicated ids are delivered twice in a row."""
    async with running(tiny_data) as mock:
        mock.faults.duplicate_ids("BNBBTC", 2)
        async with client(mock, "/ws/bnbbtc@trade") as ws:
            ids = [t["t"] for t in await receive(ws, 5)]
    assert ids == [100, 100, 101, 101, 102]


async def test_unreadable_recording_ends_only_that_connection(tiny_data: Path) -> None:
    """A corrupt trade file closes the subscribing connection with 1011; the mock serves on."""
    (tiny_data / "trades" / "BADBTC-2019-06-03.csv").write_text("not;a;trade\n")
    async with running(tiny_data) as mock:
        async with client(mock, "/ws/badbtc@trade") as ws:
            await until_closed(ws)
        async with client(mock, "/ws") as other:
            answer = await reply_to(other, {"method": "LIST_SUBSCRIPTIONS", "id": 1})
    assert ws.close_code == 1011
    assert answer == {"result": [], "id": 1}


async def test_failed_feed_closes_with_1011(
    tiny_data: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """If writing trades fails, the connection is closed with 1011 and the reason is logged."""

    def broken(*args: object, **kwargs: object) -> tuple[bytes, int]:
        raise RuntimeError("encoder broke")

    monkeypatch.setattr(Market, "frames", broken)
    async with running(tiny_data) as mock, client(mock, "/ws/bnbbtc@trade") as ws:
        await until_closed(ws)
    assert ws.close_code == 1011
    assert "encoder broke" in caplog.text


async def test_server_shutdown_in_microseconds(tiny_data: Path) -> None:
    """On a timeUnit=MICROSECOND connection the serverShutdown event time is in microseconds."""
    async with running(tiny_data) as mock, client(mock, "/ws?timeUnit=MICROSECOND") as ws:
        await until(lambda: len(mock.connections) == 1)
        mock.faults.server_shutdown(close_after=0.0)
        event = json.loads(await ws.recv())
    assert event["E"] > 10**15


async def test_aggregate_and_raw_trade_streams_side_by_side(tiny_data: Path) -> None:
    """@aggTrade carries each trade as its own aggregate next to @trade on one raw connection."""
    async with running(tiny_data) as mock, client(mock, "/ws/bnbbtc@trade/bnbbtc@aggTrade") as ws:
        events = await receive(ws, 40)
    trades = [e for e in events if e["e"] == "trade"]
    aggregates = [e for e in events if e["e"] == "aggTrade"]
    assert trades
    assert aggregates
    first = aggregates[0]
    assert set(first) == {"e", "E", "s", "a", "p", "q", "f", "l", "T", "m", "M"}
    assert first["a"] == first["f"] == first["l"] == 100
    assert [a["a"] for a in aggregates] == list(range(100, 100 + len(aggregates)))
