"""Crashes at every level of the running service: a worker, the dynamic supervisor, a crash loop.

The service runs in the test's loop against the in-process mock exchange, so a test can crash
one of its children exactly as a bug would (`Child.kill`), then watch the tree heal through the
same API and pub/sub a user sees.
"""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from streamer.events import Event, GapNotice, TradeEvent
from streamer.mock_exchange import MockExchange
from streamer.otp import Child, ChildState
from streamer.stream.pubsub import topic
from tests.e2e.inprocess import DEADLINE, Running, eventually, running_service
from tests.e2e.processes import MockProcess, Spawner

PAIR = ("ETHUSDT", "NEOUSDT")


def streamers_child(running: Running) -> Child | None:
    """The dynamic supervisor's own handle in the streaming supervisor, while it has one."""
    found = [
        c for c in running.service.streaming_supervisor.which_children() if c.id == "streamers"
    ]
    return found[0] if found else None


async def crash_dynamic_supervisor(running: Running) -> None:
    streamers = streamers_child(running)
    assert streamers is not None
    streamers.kill(RuntimeError("injected dynamic supervisor crash"))
    await running.until(lambda: streamers.restarts == 1, "dynamic supervisor restart")


def accounted_for(events: list[Event]) -> bool:
    """Whether each trade id follows the one before, or a gap notice covers the ids between."""
    expected: int | None = None
    for event in events:
        if isinstance(event, GapNotice):
            if expected is not None and event.first_missing_id != expected:
                return False
            expected = event.last_missing_id + 1
        elif isinstance(event, TradeEvent):
            if expected is not None and event.trade_id != expected:
                return False
            expected = event.trade_id + 1
    return True


async def test_a_crashed_worker_is_restarted_and_its_stream_resumes_without_loss_or_repeat(
    sqlite_url: str, mock_exchange: MockExchange
) -> None:
    """A crashed worker comes back, and its subscribers see every trade id once, in order (or a
    gap notice for the ones that could not be had)."""
    async with running_service(sqlite_url, mock_exchange, ["ETHUSDT"]) as running:
        service = running.service
        with service.pubsub.subscribe(topic("ETHUSDT")) as sub:
            await running.until(lambda: service.registry.lookup("ETHUSDT"), "ETHUSDT worker")
            await running.trades_advance(["ETHUSDT"])
            worker = service.registry.lookup("ETHUSDT")
            assert worker is not None
            crashed_at = running.last_trade_id("ETHUSDT")
            assert crashed_at is not None
            worker.kill(RuntimeError("injected worker crash"))
            await running.until(lambda: worker.restarts == 1, "worker restart")
            await running.until(
                lambda: (running.last_trade_id("ETHUSDT") or 0) > crashed_at + 100,
                "100 trades after the restart",
            )
            events = sub.get_nowait_batch()
        assert service.registry.lookup("ETHUSDT") is worker
        assert accounted_for(events), f"trade ids jump silently after {crashed_at}"


async def test_an_error_handling_trades_quarantines_the_symbol_without_a_restart(
    sqlite_url: str, mock_exchange: MockExchange
) -> None:
    """An error while handling a symbol's trades parks it briefly instead of crashing its
    worker; it streams again with every trade id once, in order, or announced."""
    async with running_service(sqlite_url, mock_exchange, ["ETHUSDT"]) as running:
        service = running.service
        with service.pubsub.subscribe(topic("ETHUSDT")) as sub:
            await running.until(lambda: service.registry.lookup("ETHUSDT"), "ETHUSDT worker")
            await running.trades_advance(["ETHUSDT"])
            worker = service.registry.lookup("ETHUSDT")
            channel = service.hub.channel("ETHUSDT")
            assert worker is not None
            assert channel is not None
            failed_at = running.last_trade_id("ETHUSDT")
            assert failed_at is not None
            channel.fail(RuntimeError("injected processing error"))
            await running.until(lambda: channel.quarantines == 1, "quarantine")
            await running.until(
                lambda: (running.last_trade_id("ETHUSDT") or 0) > failed_at + 100,
                "100 trades after the quarantine",
            )
            events = sub.get_nowait_batch()
        assert worker.restarts == 0
        assert accounted_for(events), f"trade ids jump silently after {failed_at}"


async def test_a_crashed_dynamic_supervisor_is_refilled_by_autostart(
    database_url: str, mock_exchange: MockExchange
) -> None:
    """When the dynamic supervisor crashes, autostart runs again and every enabled symbol streams
    again."""
    async with running_service(database_url, mock_exchange, PAIR) as running:
        service = running.service
        await running.until(lambda: len(service.registry) == 2, "both workers")
        await running.trades_advance(PAIR)
        old_workers = {name: service.registry.lookup(name) for name in PAIR}
        await crash_dynamic_supervisor(running)
        await running.until(
            lambda: all(
                (w := service.registry.lookup(name)) is not None and w is not old_workers[name]
                for name in PAIR
            ),
            "both symbols started again by autostart",
        )
        await running.trades_advance(PAIR)
        assert service.health().ready


async def test_streams_refilled_after_a_dynamic_supervisor_crash_lose_no_trade_silently(
    sqlite_url: str, mock_exchange: MockExchange
) -> None:
    """Across a crash of the dynamic supervisor, a subscriber sees every trade id once, in order,
    or a gap notice for the ones that could not be had."""
    async with running_service(sqlite_url, mock_exchange, ["ETHUSDT"]) as running:
        with running.service.pubsub.subscribe(topic("ETHUSDT")) as sub:
            await running.until(lambda: running.service.registry.lookup("ETHUSDT"), "a worker")
            await running.trades_advance(["ETHUSDT"])
            crashed_at = running.last_trade_id("ETHUSDT")
            assert crashed_at is not None
            await crash_dynamic_supervisor(running)
            await running.until(
                lambda: (running.last_trade_id("ETHUSDT") or 0) > crashed_at + 100,
                "100 trades after the restart",
            )
            events = sub.get_nowait_batch()
        assert accounted_for(events), f"trade ids jump silently after {crashed_at}"


async def test_a_crash_loop_escalates_and_the_service_exits_non_zero(
    sqlite_url: str, mock_exchange: MockExchange, caplog: pytest.LogCaptureFixture
) -> None:
    """Crashing the dynamic supervisor beyond every restart intensity makes `run()` return 1."""
    caplog.set_level(logging.INFO, logger="streamer")
    async with running_service(sqlite_url, mock_exchange, ["ETHUSDT"]) as running:
        task = running.task

        def running_streamers() -> Child | bool | None:
            child = streamers_child(running)
            if task.done():
                return True
            return child if child is not None and child.state is ChildState.RUNNING else None

        for _ in range(40):
            child = await eventually(running_streamers, "a running dynamic supervisor")
            if not isinstance(child, Child):
                break
            before = child.restarts
            child.kill(RuntimeError("injected crash loop"))

            def handled(child: Child = child, before: int = before) -> bool:
                replaced = streamers_child(running) is not child
                return task.done() or replaced or child.restarts > before

            await eventually(handled, "the crash handled")
        code = await asyncio.wait_for(task, DEADLINE)
    assert code == 1
    lines = [r.getMessage() for r in caplog.records if r.name == "streamer.otp"]
    assert any(m.startswith("application failed:") for m in lines), lines
    assert any(m.startswith("streamer: more than 3 restarts within 5.0s") for m in lines), lines


def test_a_service_that_cannot_listen_exits_non_zero_with_a_clear_line(
    spawn: Spawner, exchange: MockProcess, sqlite_url: str
) -> None:
    """`streamer run` on a port already taken exits 1 and says which address it could not use."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        service = spawn.service(database_url=sqlite_url, mock=exchange, port=port)
        code = service.popen.wait(60)
    assert code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in service.output()
    assert "Traceback" not in service.output()
