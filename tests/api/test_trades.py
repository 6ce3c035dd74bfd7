"""`/ws/trades`: live events as JSON for other processes, filtered by symbol."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streamer.api.trades import parse_symbols
from streamer.symbols import InvalidSymbol
from streamer.tail import TailError, follow
from tests.api.conftest import Running
from tests.polling import eventually


def ws_url(running: Running, query: str) -> str:
    return running.base_url.replace("http://", "ws://") + "/ws/trades" + query


async def collect(url: str, count: int) -> list[dict[str, Any]]:
    """The first `count` events the service sends on `url`."""
    events: list[dict[str, Any]] = []
    task = asyncio.create_task(follow(url, events.append))
    try:
        await eventually(lambda: len(events) >= count or task.done())
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return events[:count]


async def test_a_client_receives_only_the_symbols_it_asked_for(running: Running) -> None:
    """`?symbols=ethusdt` delivers ETHUSDT trades in id order, none of NEOUSDT."""
    for symbol in ("ETHUSDT", "NEOUSDT"):
        await running.http.post(f"/api/settings/{symbol}/start")

    events = await collect(ws_url(running, "?symbols=ethusdt"), 20)

    assert len(events) == 20
    assert {event["symbol"] for event in events} == {"ETHUSDT"}
    assert {event["kind"] for event in events} == {"trade"}
    ids = [event["trade_id"] for event in events]
    assert ids == sorted(set(ids))


async def test_trades_carry_exact_decimal_strings(running: Running) -> None:
    """Prices and quantities arrive as decimal strings, never as floats."""
    await running.http.post("/api/settings/ETHUSDT/start")

    event = (await collect(ws_url(running, "?symbols=ETHUSDT"), 1))[0]

    assert isinstance(event["price"], str)
    assert isinstance(event["quantity"], str)
    assert float(event["price"]) > 0


async def test_a_malformed_symbol_closes_the_socket_with_the_reason(running: Running) -> None:
    """`?symbols=eth!usdt` is refused with a close frame that says why."""
    with pytest.raises(TailError, match="invalid symbol 'eth!usdt'"):
        await follow(ws_url(running, "?symbols=eth!usdt"), lambda _: None)


def test_no_symbols_means_every_symbol() -> None:
    """An absent or empty `symbols` parameter subscribes to every topic."""
    assert parse_symbols(None) is None
    assert parse_symbols(" ") is None


def test_symbols_are_normalised_and_deduplicated_in_order() -> None:
    """`" ethusdt,BTCUSDT,,"` is read as ETHUSDT then BTCUSDT."""
    assert parse_symbols(" ethusdt,BTCUSDT,,") == ["ETHUSDT", "BTCUSDT"]


def test_a_bad_symbol_in_the_list_is_an_error() -> None:
    """One malformed entry rejects the whole list."""
    with pytest.raises(InvalidSymbol):
        parse_symbols("ETHUSDT,$$$")


async def test_a_symbol_that_is_not_streaming_is_announced_at_once(running: Running) -> None:
    """Asking for a known symbol with no worker first gets a notice saying it is not streaming."""
    (event,) = await collect(ws_url(running, "?symbols=NEOUSDT"), 1)

    assert event["kind"] == "notice"
    assert event["message"].startswith("NEOUSDT is not streaming")


async def test_an_unknown_symbol_closes_the_socket_saying_so(running: Running) -> None:
    """A well-formed symbol missing from the settings is refused at once with the reason."""
    with pytest.raises(TailError, match="unknown symbol XRPUSDT"):
        await follow(ws_url(running, "?symbols=ETHUSDT,XRPUSDT"), lambda _: None)
