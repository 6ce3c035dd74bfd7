"""Creating the database and moving its schema, the way `mix ecto.create` + `ecto.migrate` do.

Alembic runs programmatically on a connection of our own asyncio engine: no alembic.ini, and
the same URL handling and error messages as every other database operation.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from streamer.db.engine import (
    CONNECT_TIMEOUT,
    create_engine,
    describe_failure,
    engine_for,
    translate_errors,
    upgrade_command,
)
from streamer.db.errors import DatabaseMissing, DatabaseUnavailable, SchemaOutOfDate
from streamer.db.urls import display_url, endpoint, is_sqlite, parse_url, sqlite_path
from streamer.text import one_line

MIGRATIONS = Path(__file__).with_name("migrations")

#: Key of the PostgreSQL advisory lock that serialises concurrent `upgrade`s, e.g. several
#: service instances starting at once against one database.
_MIGRATION_LOCK = 0x5754_4D52


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    return config


@cache
def head() -> str:
    """The newest revision shipped with this version of the package."""
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    if revision is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS}")
    return revision


@cache
def known_revisions() -> frozenset[str]:
    """Every revision shipped here; a database at any other was migrated by a newer version."""
    scripts = ScriptDirectory.from_config(_config()).walk_revisions()
    return frozenset(script.revision for script in scripts)


async def upgrade(url: str, revision: str = "head") -> None:
    """Create the database if it does not exist, then apply every migration up to `revision`."""
    parsed = parse_url(url)
    if not is_sqlite(parsed):
        await _create_database_if_missing(parsed)
    await _migrate(parsed, lambda config: command.upgrade(config, revision))


async def downgrade(url: str, revision: str = "base") -> None:
    """Undo migrations down to `revision`; `base` leaves an empty database behind."""
    parsed = parse_url(url)
    await _migrate(parsed, lambda config: command.downgrade(config, revision))


async def current(url: str) -> str | None:
    """The revision the database is at; None when it has no schema or does not exist yet."""
    parsed = parse_url(url)
    if is_sqlite(parsed):
        path = sqlite_path(parsed)
        if path is not None and not path.exists():
            return None
    elif not await _database_exists(parsed):
        return None
    engine = create_engine(url)
    try:
        with translate_errors(parsed):
            async with engine.connect() as connection:
                return await connection.run_sync(_current_revision)
    finally:
        await engine.dispose()


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def check_schema(connection: AsyncConnection) -> None:
    """Raise `SchemaOutOfDate`, naming the command to run, unless the schema is at head."""
    url = connection.engine.url
    revision = await connection.run_sync(_current_revision)
    expected = head()
    if revision == expected:
        return
    if revision is None:
        problem = f"the database {display_url(url)} has no schema yet"
    elif revision not in known_revisions():
        raise SchemaOutOfDate(
            f"the database {display_url(url)} is at revision {revision}, which this version of "
            f"streamer does not know (a newer version migrated it); upgrade streamer"
        )
    else:
        problem = f"the database {display_url(url)} is at revision {revision}, not {expected}"
    raise SchemaOutOfDate(f"{problem}; run `{upgrade_command(url)}`")


async def _migrate(url: URL, step: Callable[[Config], None]) -> None:
    engine = engine_for(url, exclusive=True)
    try:
        with translate_errors(url):
            async with engine.begin() as connection:
                if not is_sqlite(url):
                    await connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK}
                    )
                await connection.run_sync(_run_alembic, step)
    except CommandError as exc:
        # Alembic cannot place the database's revision among ours: a newer streamer migrated it.
        raise SchemaOutOfDate(
            f"cannot migrate {display_url(url)}: {one_line(str(exc))}; it was migrated by a "
            "newer version of streamer, so upgrade streamer instead"
        ) from None
    finally:
        await engine.dispose()


def _run_alembic(connection: Connection, step: Callable[[Config], None]) -> None:
    step(_config(connection))


def _maintenance_url(url: URL) -> URL:
    return url.set(database="postgres")


async def _database_exists(url: URL) -> bool:
    """Whether the PostgreSQL database of `url` exists (asked of the server, not guessed)."""
    engine = create_async_engine(url, connect_args={"timeout": CONNECT_TIMEOUT})
    try:
        async with engine.connect():
            return True
    except (DBAPIError, OSError) as exc:
        failure = describe_failure(url, exc)
        if isinstance(failure, DatabaseMissing):
            return False
        if failure is None:
            raise
        raise failure from exc
    finally:
        await engine.dispose()


async def _create_database_if_missing(url: URL) -> None:
    if await _database_exists(url):
        return
    name = url.database
    assert name is not None
    admin = create_async_engine(
        _maintenance_url(url),
        isolation_level="AUTOCOMMIT",
        connect_args={"timeout": CONNECT_TIMEOUT},
    )
    try:
        with translate_errors(url):
            async with admin.connect() as connection:
                quoted = connection.dialect.identifier_preparer.quote(name)
                try:
                    await connection.execute(text(f"CREATE DATABASE {quoted}"))
                except DBAPIError as exc:
                    if await _database_exists(url):  # another instance created it meanwhile
                        return
                    cause = exc.orig.__cause__ if exc.orig is not None else exc
                    raise DatabaseUnavailable(
                        f"database {name!r} does not exist at {endpoint(url)} and could not "
                        f"be created: {str(cause).splitlines()[0]}"
                    ) from exc
    finally:
        await admin.dispose()
