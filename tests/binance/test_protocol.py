"""Tests for streamer.binance.protocol (pure: no event loop, an injected clock)."""

from __future__ import annotations

import random

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamer.binance.protocol import (
    ConnectionState,
    Pong,
    Request,
    cooldown_for,
    stream_name,
    symbol_of,
)
from streamer.stream.pacing import Backoff, SlidingWindow, WeightWindow


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def requests(out: list[Request | Pong]) -> list[Request]:
    return [m for m in out if isinstance(m, Request)]


def test_stream_names_round_trip() -> None:
    """A symbol maps to its lowercase trade stream and back."""
    assert stream_name("ETHUSDT") == "ethusdt@trade"
    assert symbol_of("ethusdt@trade") == "ETHUSDT"


def test_stream_names_change_ascii_case_only() -> None:
    """Non-ASCII letters keep their case both ways, so no two symbols share a stream."""
    assert stream_name("这是测试币456") == "这是测试币456@trade"
    assert symbol_of("ethu\u017fdt@trade") == "ETHU\u017fDT"
    assert stream_name("\u0130BTC") == "\u0130btc@trade"


def test_sliding_window_allows_limit_then_waits_for_oldest() -> None:
    """After `limit` events the window asks to wait until the oldest one leaves it."""
    window = SlidingWindow(5, 1.0)
    for i in range(5):
        assert window.delay(10.0 + i * 0.1) == 0.0
        window.record(10.0 + i * 0.1)
    assert window.delay(10.5) == pytest.approx(0.5)
    assert window.delay(11.0) == 0.0


def test_many_streams_go_out_in_few_batched_requests() -> None:
    """1,500 streams become a handful of SUBSCRIBE requests of at most the batch size."""
    state = ConnectionState(FakeClock(), streams_per_message=200)
    state.add(stream_name(f"S{i}") for i in range(1500))
    out, wait = state.poll()
    reqs = requests(out)
    assert len(reqs) == 4
    assert all(r.method == "SUBSCRIBE" and len(r.streams) <= 200 for r in reqs)
    assert wait is not None
    assert wait > 0


@given(st.lists(st.floats(min_value=0.0, max_value=0.5), min_size=1, max_size=60))
def test_no_one_second_window_ever_holds_more_than_four_messages(steps: list[float]) -> None:
    """By default no 1 s window sees more than 4 sent messages (pongs included): a margin
    under the exchange's 5, even before the send margin widens the window."""
    clock = FakeClock()
    state = ConnectionState(clock, streams_per_message=1, margin=0.0)
    sent_at: list[float] = []
    for i, step in enumerate(steps):
        clock.now += step
        state.add([f"s{i}@trade"])
        if i % 3 == 0:
            state.ping(b"p")
        out, _ = state.poll()
        sent_at += [clock.now] * len(out)
    for i, t in enumerate(sent_at):
        assert sum(1 for u in sent_at[i:] if u < t + 1.0) <= 4


def test_pong_goes_first_and_counts_in_the_budget() -> None:
    """A pending pong is sent before requests and takes one of the four slots of a second."""
    state = ConnectionState(FakeClock(), streams_per_message=1)
    state.add(f"s{i}@trade" for i in range(10))
    state.ping(b"abc")
    out, _ = state.poll()
    assert out[0] == Pong(b"abc")
    assert len(out) == 4


def test_latest_ping_payload_is_echoed_once() -> None:
    """Two pings before a send produce one pong with the latest payload."""
    state = ConnectionState(FakeClock())
    state.ping(b"1")
    state.ping(b"2")
    out, wait = state.poll()
    assert (out, wait) == ([Pong(b"2")], None)


def test_reply_confirms_streams_and_a_lone_refusal_parks_the_stream() -> None:
    """A success reply makes streams live; a refused lone stream waits out its backoff."""
    clock = FakeClock()
    state = ConnectionState(clock, retry_base=1.0, retry_cap=1.0)
    state.add(["a@trade"])
    (req,), _ = state.poll()
    assert isinstance(req, Request)
    assert state.on_reply(req.id, None).confirmed == ("a@trade",)
    assert state.live == {"a@trade"}
    state.add(["b@trade"])
    (req2,), _ = state.poll()
    assert isinstance(req2, Request)
    outcome = state.on_reply(req2.id, {"code": 2, "msg": "Invalid"})
    assert outcome.refused == ("b@trade",)
    assert state.parked == {"b@trade"}
    assert "b@trade" in state.wanted
    out, wait = state.poll()
    assert out == []
    assert wait is not None
    assert 0.5 <= wait <= 1.0
    assert state.url_streams() == ["a@trade"]
    clock.now += wait
    (retry,), _ = state.poll()
    assert isinstance(retry, Request)
    assert (retry.method, retry.streams) == ("SUBSCRIBE", ("b@trade",))
    assert state.parked == frozenset()


def test_a_refused_batch_is_split_until_the_refused_stream_is_alone() -> None:
    """A refused SUBSCRIBE of many streams is asked again in halves, down to the culprit."""
    state = ConnectionState(FakeClock(), messages_per_second=5)
    streams = ["a@trade", "b@trade", "c@trade", "d@trade"]
    state.add(streams)
    accepted: set[str] = set()
    for _ in range(20):
        out, _ = state.poll()
        for req in requests(out):
            error = {"code": 2} if "c@trade" in req.streams else None
            state.on_reply(req.id, error)
            if error is None:
                accepted.update(req.streams)
    assert accepted == {"a@trade", "b@trade", "d@trade"}
    assert state.live == accepted
    assert state.parked == {"c@trade"}


def test_the_backoff_of_a_refused_stream_grows_and_resets_once_accepted() -> None:
    """Each new refusal of the same stream waits longer, up to the cap; a success resets it."""
    clock = FakeClock()
    state = ConnectionState(clock, retry_base=1.0, retry_cap=4.0)
    state.add(["a@trade"])
    waits = []
    for _ in range(4):
        (req,) = requests(state.poll()[0])
        state.on_reply(req.id, {"code": 2})
        _, wait = state.poll()
        assert wait is not None
        waits.append(wait)
        clock.now += wait + 1.0
    assert waits[0] <= 1.0
    assert 2.0 <= waits[3] <= 4.0
    (req,) = requests(state.poll()[0])
    state.on_reply(req.id, None)
    state.resubscribe(["a@trade"])
    unsub, sub = requests(state.poll()[0])
    state.on_reply(unsub.id, None)
    state.on_reply(sub.id, {"code": 2})
    _, wait = state.poll()
    assert wait is not None
    assert wait <= 1.0


def test_removal_sends_unsubscribe_and_url_streams_need_no_request() -> None:
    """Streams given in the URL need no request; removing one sends one UNSUBSCRIBE."""
    state = ConnectionState(FakeClock())
    state.add(["a@trade", "b@trade"])
    state.connected(["a@trade", "b@trade"])
    assert state.poll() == ([], None)
    state.remove(["a@trade"])
    (req,), _ = state.poll()
    assert isinstance(req, Request)
    assert (req.method, req.streams) == ("UNSUBSCRIBE", ("a@trade",))
    state.on_reply(req.id, None)
    assert state.live == {"b@trade"}


def test_resubscribe_sends_unsubscribe_then_subscribe() -> None:
    """A suspect stream is unsubscribed and subscribed again, in that order."""
    state = ConnectionState(FakeClock())
    state.add(["a@trade"])
    state.connected(["a@trade"])
    state.resubscribe(["a@trade"])
    out, _ = state.poll()
    assert [(r.method, r.streams) for r in requests(out)] == [
        ("UNSUBSCRIBE", ("a@trade",)),
        ("SUBSCRIBE", ("a@trade",)),
    ]


def test_request_encodes_as_binance_expects() -> None:
    """A request encodes to the exchange's {method, params, id} JSON."""
    raw = Request(7, "SUBSCRIBE", ("a@trade",)).encode()
    assert msgspec.json.decode(raw) == {"method": "SUBSCRIBE", "params": ["a@trade"], "id": 7}


def test_backoff_grows_is_capped_and_resets() -> None:
    """Backoff delays grow exponentially within [d/2, d], stop at the cap, and reset."""
    backoff = Backoff(base=1.0, cap=8.0, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(8)]
    for n, delay in enumerate(delays):
        ceiling = min(8.0, 2.0**n)
        assert ceiling / 2 <= delay <= ceiling
    backoff.reset()
    assert backoff.next_delay() <= 1.0


def test_cooldowns_honour_retry_after_and_default() -> None:
    """429 and 418 give cool-downs (Retry-After when present); other statuses give none."""
    assert cooldown_for(429, 12.0) == 12.0
    assert cooldown_for(429, None) == 60.0
    assert cooldown_for(418, None) == 300.0
    assert cooldown_for(503, None) is None


def test_weight_window_waits_until_enough_weight_has_aged_out() -> None:
    """With 100 per minute spent in quarters, more weight waits for the oldest spends to age."""
    window = WeightWindow(100, 60.0)
    for at in (0.0, 10.0, 20.0, 30.0):
        assert window.delay(at, 25) == 0.0
        window.record(at, 25)
    assert window.delay(40.0, 25) == 20.0
    assert window.delay(40.0, 50) == 30.0
    assert window.delay(60.0, 25) == 0.0
    window.record(60.0, 25)
    assert window.spent == 100
    with pytest.raises(ValueError, match="never fit"):
        window.delay(60.0, 101)
