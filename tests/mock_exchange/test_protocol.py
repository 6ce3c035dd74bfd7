"""Binance's websocket URLs and control messages, without a socket."""

from __future__ import annotations

import json
from typing import Any

import pytest

from streamer.mock_exchange.protocol import Session, UrlError, handle, parse_url


def reply(session: Session, message: Any) -> Any:
    text = message if isinstance(message, str) else json.dumps(message)
    return json.loads(handle(session, text).payload)


def test_raw_url_with_one_stream() -> None:
    """/ws/<stream> is a raw (not combined) session with that stream."""
    session = parse_url("/ws/btcusdt@trade", 1024)
    assert session.combined is False
    assert list(session.streams) == ["btcusdt@trade"]


def test_raw_url_with_several_streams_or_none() -> None:
    """/ws/a/b subscribes both; a bare /ws subscribes nothing yet."""
    assert list(parse_url("/ws/aa@trade/bb@trade", None).streams) == ["aa@trade", "bb@trade"]
    assert list(parse_url("/ws", None).streams) == []


def test_combined_url() -> None:
    """/stream?streams=a/b is a combined session with both streams."""
    session = parse_url("/stream?streams=btcusdt@trade/ethbtc@trade", 1024)
    assert session.combined is True
    assert list(session.streams) == ["btcusdt@trade", "ethbtc@trade"]
    assert session.micro is False


def test_microsecond_time_unit() -> None:
    """timeUnit=MICROSECOND (either case) switches the session to microseconds."""
    assert parse_url("/stream?streams=a@trade&timeUnit=MICROSECOND", None).micro is True
    assert parse_url("/ws/aa@trade?timeUnit=microsecond", None).micro is True


@pytest.mark.parametrize(
    ("target", "status"),
    [
        ("/ws/aa@trade?timeUnit=NANOSECOND", 400),
        ("/stream?streams=a@trade/bb@trade/cc@trade", 400),
        ("/api/v3/nothing", 404),
    ],
)
def test_refused_urls(target: str, status: int) -> None:
    """A bad time unit or too many streams is a 400; an unknown path a 404."""
    with pytest.raises(UrlError) as caught:
        parse_url(target, 2)
    assert caught.value.status == status


def test_subscribe_and_list() -> None:
    """SUBSCRIBE answers result null and LIST_SUBSCRIPTIONS lists streams in order."""
    session = Session(combined=True)
    outcome = handle(session, '{"method":"SUBSCRIBE","params":["aa@trade","bb@trade"],"id":1}')
    assert json.loads(outcome.payload) == {"result": None, "id": 1}
    assert outcome.added == ("aa@trade", "bb@trade")
    assert reply(session, {"method": "LIST_SUBSCRIPTIONS", "id": 2}) == {
        "result": ["aa@trade", "bb@trade"],
        "id": 2,
    }


def test_subscribing_twice_adds_nothing() -> None:
    """Subscribing a stream already subscribed changes nothing."""
    session = Session(combined=True, streams={"aa@trade": None})
    outcome = handle(session, '{"method":"SUBSCRIBE","params":["aa@trade"],"id":1}')
    assert outcome.added == ()


def test_unsubscribe() -> None:
    """UNSUBSCRIBE removes the streams it names and answers result null."""
    session = Session(combined=True, streams={"aa@trade": None, "bb@trade": None})
    outcome = handle(session, '{"method":"UNSUBSCRIBE","params":["aa@trade","zz@trade"],"id":"x1"}')
    assert json.loads(outcome.payload) == {"result": None, "id": "x1"}
    assert outcome.removed == ("aa@trade",)
    assert list(session.streams) == ["bb@trade"]


def test_properties() -> None:
    """SET_PROPERTY combined changes what GET_PROPERTY combined answers."""
    session = Session(combined=False)
    assert reply(session, {"method": "GET_PROPERTY", "params": ["combined"], "id": 1}) == {
        "result": False,
        "id": 1,
    }
    answer = reply(session, {"method": "SET_PROPERTY", "params": ["combined", True], "id": 2})
    assert answer == {"result": None, "id": 2}
    assert session.combined is True


def test_null_id_is_accepted() -> None:
    """An id may be null, and is echoed."""
    assert reply(Session(combined=False), {"method": "LIST_SUBSCRIPTIONS", "id": None}) == {
        "result": [],
        "id": None,
    }


@pytest.mark.parametrize(
    ("message", "code", "text"),
    [
        ("{not json", 3, "Invalid JSON"),
        ("[1, 2]", 2, "Invalid request"),
        ({"params": [], "id": 1}, 2, "missing field `method`"),
        ({"method": "SUBSCRIB", "params": [], "id": 1}, 2, "unknown variant `SUBSCRIB`"),
        ({"method": "SUBSCRIBE", "params": [], "id": True}, 2, "request ID must be"),
        ({"method": "SUBSCRIBE", "params": [], "id": "has space"}, 2, "request ID must be"),
        ({"method": "SUBSCRIBE", "params": "aa@trade", "id": 1}, 2, "expected a sequence"),
        ({"method": "SUBSCRIBE", "params": [1], "id": 1}, 2, "must be strings"),
        ({"method": "LIST_SUBSCRIPTIONS", "params": ["x"], "id": 1}, 2, "too many parameters"),
        ({"method": "GET_PROPERTY", "params": ["combined", 1], "id": 1}, 2, "too many parameters"),
        ({"method": "GET_PROPERTY", "params": [5], "id": 1}, 2, "property name must be a string"),
        ({"method": "GET_PROPERTY", "params": [], "id": 1}, 2, "property name must be a string"),
        ({"method": "GET_PROPERTY", "params": ["colour"], "id": 1}, 0, "Unknown property"),
        ({"method": "SET_PROPERTY", "params": ["combined", "yes"], "id": 1}, 1, "expected Boolean"),
        ({"method": "SET_PROPERTY", "params": ["combined"], "id": 1}, 1, "expected Boolean"),
    ],
)
def test_errors(message: Any, code: int, text: str) -> None:
    """Each malformed request gets Binance's error object with its code and message."""
    answer = reply(Session(combined=False), message)
    assert answer["error"]["code"] == code
    assert text in answer["error"]["msg"]
    assert "id" in answer


def test_error_echoes_the_request_id() -> None:
    """An error about a request with a valid id carries that id."""
    answer = reply(Session(combined=False), {"method": "NOPE", "id": 42})
    assert answer["id"] == 42


def test_stream_limit() -> None:
    """A SUBSCRIBE that would pass the per-connection stream limit is refused whole."""
    session = Session(combined=True, max_streams=2, streams={"aa@trade": None})
    answer = reply(session, {"method": "SUBSCRIBE", "params": ["bb@trade", "cc@trade"], "id": 1})
    assert answer["error"]["code"] == 2
    assert "too many streams" in answer["error"]["msg"]
    assert list(session.streams) == ["aa@trade"]


@pytest.mark.parametrize(
    "name",
    ["BTCUSDT@trade", "btcusdt@trades", "btcusdt", "btc usdt@trade", "@trade", "b%C3@trade"],
)
def test_subscribe_refuses_a_malformed_stream_name(name: str) -> None:
    """A SUBSCRIBE naming a malformed stream is refused (code 2) and subscribes nothing."""
    session = Session(combined=True)
    answer = reply(session, {"method": "SUBSCRIBE", "params": ["ethusdt@trade", name], "id": 7})
    assert answer == {"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": 7}
    listed = reply(session, {"method": "LIST_SUBSCRIPTIONS", "id": 8})
    assert listed == {"result": [], "id": 8}


def test_subscribe_takes_documented_and_unicode_stream_names() -> None:
    """Well-formed names are subscribed even for unlisted symbols, non-ASCII ones included."""
    session = Session(combined=True)
    names = ["这是测试币456@trade", "btcusdt@depth20@100ms", "nopebtc@kline_1m", "!miniTicker@arr"]
    assert reply(session, {"method": "SUBSCRIBE", "params": names, "id": 1}) == {
        "result": None,
        "id": 1,
    }
    assert list(session.streams) == names


def test_a_request_without_id_is_refused() -> None:
    """A control message without `id` is an invalid request; `"id": null` is allowed."""
    session = Session(combined=True)
    answer = reply(session, {"method": "SUBSCRIBE", "params": ["ethusdt@trade"]})
    assert answer["error"]["code"] == 2
    assert "missing field `id`" in answer["error"]["msg"]
    assert session.streams == {}
    listed = reply(session, {"method": "LIST_SUBSCRIPTIONS", "id": None})
    assert listed == {"result": [], "id": None}


def test_stream_urls_take_percent_encoded_names() -> None:
    """A non-ASCII stream name arrives percent-encoded in a URL and is stored decoded."""
    encoded = "%E8%BF%99%E6%98%AF%E6%B5%8B%E8%AF%95%E5%B8%81456@trade"
    raw = parse_url(f"/ws/{encoded}", None)
    combined = parse_url(f"/stream?streams={encoded}", None)
    assert list(raw.streams) == list(combined.streams) == ["这是测试币456@trade"]
