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
    assert list(parse_url("/ws/a@trade/b@trade", None).streams) == ["a@trade", "b@trade"]
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
    assert parse_url("/ws/a@trade?timeUnit=microsecond", None).micro is True


@pytest.mark.parametrize(
    ("target", "status"),
    [
        ("/ws/a@trade?timeUnit=NANOSECOND", 400),
        ("/stream?streams=a@trade/b@trade/c@trade", 400),
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
    outcome = handle(session, '{"method":"SUBSCRIBE","params":["a@trade","b@trade"],"id":1}')
    assert json.loads(outcome.payload) == {"result": None, "id": 1}
    assert outcome.added == ("a@trade", "b@trade")
    assert reply(session, {"method": "LIST_SUBSCRIPTIONS", "id": 2}) == {
        "result": ["a@trade", "b@trade"],
        "id": 2,
    }


def test_subscribing_twice_adds_nothing() -> None:
    """Subscribing a stream already subscribed changes nothing."""
    session = Session(combined=True, streams={"a@trade": None})
    outcome = handle(session, '{"method":"SUBSCRIBE","params":["a@trade"],"id":1}')
    assert outcome.added == ()


def test_unsubscribe() -> None:
    """UNSUBSCRIBE removes the streams it names and answers result null."""
    session = Session(combined=True, streams={"a@trade": None, "b@trade": None})
    outcome = handle(session, '{"method":"UNSUBSCRIBE","params":["a@trade","z@trade"],"id":"x1"}')
    assert json.loads(outcome.payload) == {"result": None, "id": "x1"}
    assert outcome.removed == ("a@trade",)
    assert list(session.streams) == ["b@trade"]


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
        ({"method": "SUBSCRIBE", "params": "a@trade", "id": 1}, 2, "expected a sequence"),
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
    session = Session(combined=True, max_streams=2, streams={"a@trade": None})
    answer = reply(session, {"method": "SUBSCRIBE", "params": ["b@trade", "c@trade"], "id": 1})
    assert answer["error"]["code"] == 2
    assert "too many streams" in answer["error"]["msg"]
    assert list(session.streams) == ["a@trade"]
