"""The live feed: the board's deltas, histories and gap times, and `/ws/live` end to end."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

import pytest
import websockets
from fastapi import WebSocket
from websockets.typing import Origin

from streamer.api.live import (
    CLIENT_BACKLOG,
    HISTORY_POINTS,
    UNSHOWN,
    History,
    LiveBoard,
    LiveFeed,
    row_of,
)
from streamer.api.models import SymbolState
from streamer.db import Status
from streamer.events import TradeEvent
from streamer.stream.stats import LiveState
from tests.api.conftest import SYMBOLS, Running


def trade(symbol: str, price: str, trade_id: int = 1) -> TradeEvent:
    return TradeEvent(
        event_type="trade",
        event_time=0,
        symbol=symbol,
        trade_id=trade_id,
        price=Decimal(price),
        quantity=Decimal(1),
        trade_time=0,
        buyer_market_maker=False,
    )


def row(symbol: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "symbol": symbol,
        "status": "on",
        "state": "streaming",
        "rate": 2.0,
        "gaps_filled": 0,
        "gaps_lost": 0,
    }
    return base | fields


def test_a_tick_carries_only_what_changed() -> None:
    """The first tick carries whole rows; the next only the fields that changed, and removals."""
    board = LiveBoard()
    first = board.update([row("ETHUSDT"), row("BTCUSDT")], {}, {}, 100.0)
    assert set(first.rows) == {"ETHUSDT", "BTCUSDT"}
    assert first.rows["ETHUSDT"]["state"] == "streaming"

    second = board.update([row("ETHUSDT", state="backoff")], {}, {}, 101.0)

    assert second.rows == {"ETHUSDT": {"state": "backoff"}}
    assert second.removed == ["BTCUSDT"]


def test_prices_make_history_and_change_over_a_window() -> None:
    """The last price of each tick is kept, and the change column compares it with a minute ago."""
    board = LiveBoard()
    for second, price in enumerate(["100", "101", "102"]):
        board.take_trades([trade("ETHUSDT", "1"), trade("ETHUSDT", price)], 1000.0 + second * 30)
        tick = board.update([row("ETHUSDT")], {}, {}, 1000.0 + second * 30)

    assert tick.rows["ETHUSDT"]["price"] == 102.0
    assert tick.rows["ETHUSDT"]["change_1m"] == pytest.approx(2.0)
    assert tick.rows["ETHUSDT"]["last_seen"] == 1060.0 * 1000
    history = board.history("ETHUSDT")
    assert history.t == [1000.0, 1030.0, 1060.0]
    assert history.price == [100.0, 101.0, 102.0]
    assert history.rate == [2.0, 2.0, 2.0]


def test_gaps_filled_and_lost_get_a_time() -> None:
    """A rise of the gap counters between ticks becomes a dated event on the gap timeline."""
    board = LiveBoard()
    board.update([row("ETHUSDT")], {}, {}, 10.0)
    board.update([row("ETHUSDT", gaps_filled=2)], {}, {}, 11.0)
    board.update([row("ETHUSDT", gaps_filled=2, gaps_lost=1)], {}, {}, 12.0)

    assert board.history("ETHUSDT").gaps == [(11.0, "filled", 2), (12.0, "lost", 1)]


def test_a_stopped_symbol_keeps_its_row_but_drops_its_history() -> None:
    """Stopping keeps the row (marked stopped), without the stale change and chart."""
    board = LiveBoard()
    board.take_trades([trade("ETHUSDT", "5")], 1.0)
    board.update([row("ETHUSDT")], {}, {}, 1.0)
    tick = board.update([row("ETHUSDT", state="stopped")], {}, {}, 2.0)

    assert tick.rows["ETHUSDT"]["state"] == "stopped"
    assert tick.rows["ETHUSDT"]["change_1m"] is None
    assert board.history("ETHUSDT").t == []


def test_tree_and_health_are_sent_only_when_they_change() -> None:
    """An unchanged tree or health is left out of the tick."""
    board = LiveBoard()
    first = board.update([], {"name": "streamer"}, {"ready": True}, 1.0)
    second = board.update([], {"name": "streamer"}, {"ready": True}, 2.0)

    assert first.tree == {"name": "streamer"}
    assert first.health == {"ready": True}
    assert second.tree is None
    assert second.health is None


def test_rows_survive_a_database_outage() -> None:
    """Without rows (the database did not answer) the last rows stay, nothing is removed."""
    board = LiveBoard()
    board.update([row("ETHUSDT")], {}, {}, 1.0)
    tick = board.update(None, {}, {}, 2.0)

    assert tick.rows == {}
    assert tick.removed == []
    assert "ETHUSDT" in board.rows


def test_history_stays_bounded() -> None:
    """A symbol streaming for hours keeps only its last few minutes of points."""
    history = History()
    for second in range(HISTORY_POINTS * 5):
        history.append(float(second), 1.0 + second, 0.0)

    assert HISTORY_POINTS <= len(history.t) < HISTORY_POINTS * 5 // 4 + 1
    assert history.t[-1] == HISTORY_POINTS * 5 - 1
    assert len(history.price) == len(history.rate) == len(history.t)


async def test_a_page_that_falls_behind_gets_a_snapshot_not_a_backlog(running: Running) -> None:
    """Ticks a page has not read are dropped for one fresh snapshot, so its queue stays short."""
    feed = LiveFeed(running.service, interval=3600.0)
    page = feed.join(cast(WebSocket, None))
    try:
        for _ in range(CLIENT_BACKLOG * 3):
            await feed._tick()
        kinds = []
        while not page.queue.empty():
            kinds.append(json.loads(page.queue.get_nowait())["type"])
    finally:
        feed.leave(page)
        await feed.close()

    assert 0 < len(kinds) <= CLIENT_BACKLOG
    assert kinds[0] == "snapshot"


def ws_url(running: Running) -> str:
    return running.base_url.replace("http://", "ws://") + "/ws/live"


async def test_the_feed_sends_a_snapshot_then_ticks_and_histories(running: Running) -> None:
    """A page gets every setting in a snapshot, then ticks; `watch` returns a symbol's history."""
    async with websockets.connect(ws_url(running)) as socket:
        snapshot = json.loads(await asyncio.wait_for(socket.recv(), 10))
        assert snapshot["type"] == "snapshot"
        assert {r["symbol"] for r in snapshot["rows"]} >= set(SYMBOLS)
        assert snapshot["tree"]["name"] == "streamer"
        assert json.loads(await asyncio.wait_for(socket.recv(), 10))["type"] == "tick"

        await socket.send(json.dumps({"type": "watch", "symbols": ["ETHUSDT"]}))
        while (message := json.loads(await asyncio.wait_for(socket.recv(), 10)))["type"] != (
            "history"
        ):
            pass
        assert message["symbol"] == "ETHUSDT"
        assert len(message["t"]) == len(message["price"]) == len(message["rate"])


async def test_a_bad_request_gets_an_error_and_the_feed_goes_on(running: Running) -> None:
    """A malformed message is answered with an error; the connection stays open."""
    async with websockets.connect(ws_url(running)) as socket:
        await socket.send("{not json")
        kinds = set()
        while "error" not in kinds or "tick" not in kinds:
            kinds.add(json.loads(await asyncio.wait_for(socket.recv(), 10))["type"])


async def test_a_foreign_origin_is_refused(running: Running) -> None:
    """A page from another site cannot open the feed (websockets are not covered by CORS)."""
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(ws_url(running), origin=Origin("http://evil.example")):
            pass
    assert refused.value.response.status_code == 403


def test_rows_leave_out_what_changes_with_every_trade_and_the_page_does_not_show() -> None:
    """Trade counters and ids stay out of the feed's rows; every other API field is in, plain."""
    state = SymbolState(
        symbol="ETHUSDT",
        status=Status.ON,
        state=LiveState.STREAMING,
        since=datetime(2026, 1, 1, tzinfo=UTC),
        trades=5,
        last_trade_id=7,
    )

    shown = row_of(state)

    assert not UNSHOWN & shown.keys()
    assert shown["state"] == "streaming"
    assert shown["status"] == "on"
    assert shown["since"] == datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000
    assert set(SymbolState.model_fields) - UNSHOWN <= shown.keys()
