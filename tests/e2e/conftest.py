"""Fixtures of the end-to-end tests: real processes that are always killed when a test ends."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamer.demo import prepare_database
from tests.e2e.processes import MockProcess, Spawner, run_cli


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawner]:
    """Processes of one test."""
    spawner = Spawner(tmp_path)
    try:
        yield spawner
    finally:
        spawner.close()


@pytest.fixture(scope="session")
def exchange(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockProcess]:
    """One mock exchange process shared by the tests that switch no fault on."""
    spawner = Spawner(tmp_path_factory.mktemp("exchange"))
    try:
        yield spawner.mock()
    finally:
        spawner.close()


@pytest.fixture
def seeded_url(database_url: str, exchange: MockProcess) -> str:
    """A fresh database (each backend) seeded by `streamer seed` from the mock: every symbol off."""
    seeded = run_cli("seed", "--database-url", database_url, "--exchange-url", exchange.rest_url)
    assert seeded.code == 0, seeded.stderr
    return database_url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite file, for tests whose point does not depend on the database backend."""
    return f"sqlite:///{tmp_path / 'streamer.db'}"


@pytest.fixture
def seeded_sqlite(sqlite_url: str, exchange: MockProcess) -> str:
    """A fresh SQLite file seeded from the mock in this process (one command less to wait for)."""
    asyncio.run(prepare_database(sqlite_url, exchange.rest_url, []))
    return sqlite_url


SLOW_SPEED = 5.0
"""A slow mock: 30 symbols on three instances stay light on a shared machine."""


@pytest.fixture
def slow_exchange(spawn: Spawner) -> MockProcess:
    """A mock exchange of this test's own, paced for groups of instances."""
    return spawn.mock(speed=SLOW_SPEED)


@pytest.fixture
def seeded_postgres(postgres_url: str, slow_exchange: MockProcess) -> str:
    """The PostgreSQL test database seeded by `streamer seed` from `slow_exchange`."""
    seeded = run_cli(
        "seed", "--database-url", postgres_url, "--exchange-url", slow_exchange.rest_url
    )
    assert seeded.code == 0, seeded.stderr
    return postgres_url
