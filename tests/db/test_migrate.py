"""Creating the database and moving its schema, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from streamer.db import (
    DatabaseUnavailable,
    SchemaOutOfDate,
    SettingsRepository,
    create_engine,
    current,
    downgrade,
    head,
    upgrade,
)
from streamer.db.models import settings


async def _enum_types(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        if connection.dialect.name != "postgresql":
            return []
        rows = await connection.execute(sa.text("SELECT typname FROM pg_type WHERE typtype = 'e'"))
        return [row.typname for row in rows]


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names())
    return set(names)


async def test_current_is_none_before_anything_exists(database_url: str) -> None:
    """`current` on a database that does not exist says None and creates nothing."""
    assert await current(database_url) is None
    if database_url.startswith("sqlite"):
        assert not Path(database_url.removeprefix("sqlite:///")).parent.exists()


async def test_upgrade_creates_the_database_and_reaches_head(database_url: str) -> None:
    """`upgrade` on a missing database (file or PostgreSQL database) creates it at head."""
    await upgrade(database_url)
    assert await current(database_url) == head()


async def test_upgrade_twice_is_a_no_op(database_url: str) -> None:
    """A second upgrade leaves the revision and the data as they were."""
    await upgrade(database_url)
    engine = create_engine(database_url)
    try:
        await SettingsRepository(engine).add_missing(["ETHUSDT"])
        await upgrade(database_url)
        assert await SettingsRepository(engine).symbols() == {"ETHUSDT"}
    finally:
        await engine.dispose()
    assert await current(database_url) == head()


async def test_concurrent_upgrades_agree(database_url: str) -> None:
    """Several instances upgrading one new database at once all succeed, once."""
    await asyncio.gather(*(upgrade(database_url) for _ in range(3)))
    assert await current(database_url) == head()


async def test_round_trip_upgrade_downgrade_upgrade(database_url: str) -> None:
    """Downgrade to base drops the table (and PostgreSQL's enum type); upgrade restores both."""
    await upgrade(database_url)
    engine = create_engine(database_url)
    try:
        assert "settings" in await _tables(engine)
        is_postgres = engine.dialect.name == "postgresql"
        assert ("streaming_status" in await _enum_types(engine)) is is_postgres

        await downgrade(database_url)
        assert await current(database_url) is None
        assert "settings" not in await _tables(engine)
        assert "streaming_status" not in await _enum_types(engine)

        await upgrade(database_url)
        assert await current(database_url) == head()
        assert "settings" in await _tables(engine)
        assert ("streaming_status" in await _enum_types(engine)) is is_postgres
    finally:
        await engine.dispose()


async def test_status_outside_on_off_is_refused_by_the_database(engine: AsyncEngine) -> None:
    """The enum type (PostgreSQL) or CHECK constraint (SQLite) rejects any other status."""
    with pytest.raises(IntegrityError if engine.dialect.name == "sqlite" else sa.exc.DBAPIError):
        async with engine.begin() as connection:
            await connection.execute(
                sa.text(
                    "INSERT INTO settings (id, symbol, status) "
                    "VALUES ('00000000000000000000000000000001', 'ETHUSDT', 'maybe')"
                )
            )
    assert await SettingsRepository(engine).symbols() == set()


async def test_the_database_fills_defaults(engine: AsyncEngine) -> None:
    """A row inserted without status or timestamps gets `off` and both timestamps."""
    async with engine.begin() as connection:
        await connection.execute(settings.insert().values(id=uuid.uuid4(), symbol="ETHUSDT"))
    setting = await SettingsRepository(engine).get("ETHUSDT")
    assert setting.status == "off"
    assert setting.inserted_at is not None
    assert setting.updated_at is not None


async def test_symbols_are_unique(engine: AsyncEngine) -> None:
    """Two rows with one symbol violate the unique constraint."""
    async with engine.begin() as connection:
        await connection.execute(settings.insert().values(id=uuid.uuid4(), symbol="ETHUSDT"))
    with pytest.raises(IntegrityError):
        async with engine.begin() as connection:
            await connection.execute(settings.insert().values(id=uuid.uuid4(), symbol="ETHUSDT"))


async def test_check_schema_after_downgrade_names_the_command(
    database_url: str, engine: AsyncEngine
) -> None:
    """An outdated schema is reported with the exact `streamer db upgrade` command."""
    await downgrade(database_url)
    with pytest.raises(SchemaOutOfDate, match=r"run `streamer db upgrade --database-url '"):
        await SettingsRepository(engine).check_schema()


async def test_unknown_newer_revision_asks_to_upgrade_streamer(engine: AsyncEngine) -> None:
    """A database migrated by a newer version is reported as such, not downgraded."""
    async with engine.begin() as connection:
        await connection.execute(sa.text("UPDATE alembic_version SET version_num = 'ffff'"))
    with pytest.raises(SchemaOutOfDate, match="does not know"):
        await SettingsRepository(engine).check_schema()


async def test_upgrade_refuses_a_database_from_a_newer_version(
    database_url: str, engine: AsyncEngine
) -> None:
    """Upgrading a database at an unknown revision says to upgrade streamer, and changes nothing."""
    async with engine.begin() as connection:
        await connection.execute(sa.text("UPDATE alembic_version SET version_num = 'ffff'"))
    with pytest.raises(SchemaOutOfDate, match="newer version of streamer") as caught:
        await upgrade(database_url)
    assert "\n" not in str(caught.value)
    assert await current(database_url) == "ffff"


async def test_upgrade_of_unreachable_server_names_host_and_port() -> None:
    """Nothing listening on the port: DatabaseUnavailable naming host:port, in one line."""
    with pytest.raises(DatabaseUnavailable) as caught:
        await upgrade("postgresql://postgres@127.0.0.1:1/streamer")
    assert "127.0.0.1:1" in str(caught.value)
    assert "\n" not in str(caught.value)
