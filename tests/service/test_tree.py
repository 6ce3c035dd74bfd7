"""The application tree as a whole: what it refuses, and how it waits for a database."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from streamer.api.security import TokenRequired
from streamer.config import Settings
from streamer.db import DatabaseCorrupt, DatabaseUnavailable
from streamer.events import TradeEvent
from streamer.mock_exchange import MockExchange
from streamer.service import Service
from streamer.stream.pubsub import topic
from tests.fixtures.database import seed_database
from tests.fixtures.mock_exchange import fast_streamer_config
from tests.polling import eventually
from tests.ports import closed_port


def test_a_service_beyond_loopback_needs_a_token() -> None:
    """Building a service bound to 0.0.0.0 without a token fails with the fix in the message."""
    with pytest.raises(TokenRequired, match="STREAMER_TOKEN"):
        Service(Settings(host="0.0.0.0", database_url="sqlite:///:memory:"))


async def test_a_database_down_at_start_is_waited_for_without_crash_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With no database the service logs why, retries, stays unready, and still stops cleanly."""
    url = f"postgresql://postgres@127.0.0.1:{closed_port()}/streamer"
    service = Service(Settings(database_url=url, port=0), http=False, database_retry=0.05)

    with caplog.at_level(logging.WARNING, logger="streamer.service.tree"):
        task = asyncio.create_task(service.run())
        await eventually(lambda: caplog.text.count("Waiting for the database") >= 3)

        assert not service.health().ready
        assert not service.health().database
        assert all(child.restarts == 0 for child in service.root.which_children())

        await service.root.stop()
        assert await task == 0
    assert "127.0.0.1" in caplog.text


async def test_a_file_that_is_not_a_database_fails_at_once(tmp_path: Path) -> None:
    """An SQLite file of something else is one error before anything starts, not an outage."""
    corrupt = tmp_path / "streamer.db"
    corrupt.write_bytes(b"this is a text file, not SQLite\n" * 200)
    service = Service(Settings(database_url=f"sqlite:///{corrupt}", port=0), http=False)

    with pytest.raises(DatabaseCorrupt, match="is not an SQLite database") as caught:
        await service.run()

    assert "\n" not in str(caught.value)
    assert service.root.which_children() == []


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

    with caplog.at_level(logging.INFO, logger="streamer.service.tree"):
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
