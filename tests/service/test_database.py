"""The `database` child: waiting for a database, following its outages, saving positions."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path

import pytest

from streamer.config import Settings
from streamer.db import DatabaseUnavailable, SettingsRepository, create_engine
from streamer.events import TradeEvent
from streamer.mock_exchange import MockExchange
from streamer.service import Service
from streamer.service.database import Database
from streamer.stream.pubsub import topic
from tests.fixtures.database import seed_database
from tests.fixtures.mock_exchange import fast_streamer_config
from tests.polling import eventually
from tests.ports import closed_port


async def test_a_database_down_at_start_is_waited_for_without_crash_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With no database the service logs why, retries, stays unready, and still stops cleanly."""
    url = f"postgresql://postgres@127.0.0.1:{closed_port()}/streamer"
    service = Service(Settings(database_url=url, port=0), http=False, database_retry=0.05)

    with caplog.at_level(logging.WARNING, logger="streamer.service.database"):
        task = asyncio.create_task(service.run())
        await eventually(lambda: caplog.text.count("Waiting for the database") >= 3)

        assert not service.health().ready
        assert not service.health().database
        assert all(child.restarts == 0 for child in service.root.which_children())

        await service.root.stop()
        assert await task == 0
    assert "127.0.0.1" in caplog.text


async def test_health_follows_the_database_after_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A database that stops answering makes the service unready, and ready again on return."""
    url = f"sqlite:///{tmp_path / 'streamer.db'}"
    service = Service(Settings(database_url=url, port=0), http=False, database_probe=0.05)
    task = asyncio.create_task(service.run())
    await eventually(lambda: service.health().ready)
    answers = service.repository.ping

    async def down() -> None:
        raise DatabaseUnavailable("cannot reach the database: test outage")

    with caplog.at_level(logging.INFO, logger="streamer.service.database"):
        monkeypatch.setattr(service.repository, "ping", down)
        await eventually(lambda: not service.health().ready)
        assert not service.health().database
        monkeypatch.setattr(service.repository, "ping", answers)
        await eventually(lambda: service.health().ready)

    assert "The database stopped answering: cannot reach the database" in caplog.text
    assert "The database answers again" in caplog.text
    await service.root.stop()
    assert await task == 0


async def test_a_restarted_service_back_fills_what_it_missed_while_down(
    tmp_path: Path, mock_exchange: MockExchange
) -> None:
    """After a stop and a start, a symbol's trades continue from the last one delivered before."""
    url = f"sqlite:///{tmp_path / 'streamer.db'}"
    await seed_database(url, ["ETHUSDT"], on=["ETHUSDT"])

    def service() -> Service:
        return Service(
            Settings(
                database_url=url, ws_url=mock_exchange.ws_url, rest_url=mock_exchange.rest_url
            ),
            streamer_config=fast_streamer_config(mock_exchange),
            http=False,
            database_probe=0.1,
        )

    async def trades_of(running: Service, more_than: int) -> list[int]:
        """Run `running` until its subscriber has seen more than `more_than` trades."""
        seen: list[int] = []
        with running.pubsub.subscribe(topic("ETHUSDT")) as sub:
            task = asyncio.create_task(running.run())
            while len(seen) <= more_than:
                seen.extend(e.trade_id for e in await sub.get_batch() if isinstance(e, TradeEvent))
            await running.root.stop()
            assert await task == 0
            # Published before the stop, so counted in the saved position: read them too.
            seen.extend(e.trade_id for e in sub.get_nowait_batch() if isinstance(e, TradeEvent))
        return seen

    before = await trades_of(service(), 20)
    after = await trades_of(service(), 20)

    assert after[0] == before[-1] + 1
    assert after == list(range(after[0], after[0] + len(after)))


async def _saved_positions(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        return await SettingsRepository(engine).positions()
    finally:
        await engine.dispose()


async def _run_until_stopped(database: Database, until: asyncio.Event | None = None) -> None:
    """Run the child until it is ready (and `until` is set), then stop it as its supervisor
    would: by cancelling it."""
    child = asyncio.create_task(database.child_spec().start(lambda: None))
    async with asyncio.timeout(20):
        await database.ready.wait()
        if until is not None:
            await until.wait()
    child.cancel()
    with pytest.raises(asyncio.CancelledError):
        await child


async def test_saved_positions_seed_the_streams_and_the_last_ones_are_saved_at_stop(
    database_url: str,
) -> None:
    """`resume` gets the saved positions before the child is ready; its stop saves the latest."""
    await seed_database(database_url, ["ETHUSDT", "BTCUSDT"], on=["ETHUSDT"])
    engine = create_engine(database_url)
    await SettingsRepository(engine).save_positions({"ETHUSDT": 10})
    await engine.dispose()
    resumed: list[Mapping[str, int]] = []

    def resume(positions: Mapping[str, int]) -> None:
        assert not database.ready.is_set()
        resumed.append(dict(positions))

    database = Database(database_url, resume=resume, positions=lambda: {"ETHUSDT": 42})
    await _run_until_stopped(database)

    assert resumed == [{"ETHUSDT": 10}]
    assert not database.ready.is_set()
    assert await _saved_positions(database_url) == {"ETHUSDT": 42}


async def test_without_positions_to_save_the_child_only_pings(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a group the leases' owners save positions: this child probes with a ping instead,
    and saves nothing at stop."""
    await seed_database(database_url, ["ETHUSDT"], on=["ETHUSDT"])
    engine = create_engine(database_url)
    await SettingsRepository(engine).save_positions({"ETHUSDT": 10})
    await engine.dispose()
    database = Database(database_url, resume=lambda _: None, positions=None, probe=0.02)
    answers = database.repository.ping
    pinged = asyncio.Event()
    pings = 0

    async def ping() -> None:
        nonlocal pings
        await answers()
        pings += 1
        if pings >= 3:
            pinged.set()

    async def no_save(positions: Mapping[str, int]) -> None:
        raise AssertionError(f"saved {positions}")

    monkeypatch.setattr(database.repository, "ping", ping)
    monkeypatch.setattr(database.repository, "save_positions", no_save)
    await _run_until_stopped(database, until=pinged)

    assert await _saved_positions(database_url) == {"ETHUSDT": 10}
