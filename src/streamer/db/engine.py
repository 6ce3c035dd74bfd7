"""Engines for the settings database, and the one place driver errors become user errors.

asyncpg, aiosqlite and SQLAlchemy each report a dead server, a wrong login or a missing table in
their own way; `translate_errors` maps them all onto the few `DatabaseError`s the CLI and the
service know how to explain in one line.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from streamer.config import Settings
from streamer.db.errors import (
    DatabaseCorrupt,
    DatabaseError,
    DatabaseMissing,
    DatabaseUnavailable,
    SchemaOutOfDate,
)
from streamer.db.urls import display_url, endpoint, is_sqlite, parse_url, sqlite_path

#: Seconds to wait for a PostgreSQL connection, and for an SQLite write lock held by another
#: writer, before giving up with a clear error instead of hanging.
CONNECT_TIMEOUT = 10.0
SQLITE_BUSY_TIMEOUT = 30.0

_LOGIN_ERRORS = {"InvalidPasswordError", "InvalidAuthorizationSpecificationError"}
_MISSING_TABLE_ERRORS = {"UndefinedTableError"}
_CONNECTION_ERRORS = {
    "ConnectionDoesNotExistError",
    "ConnectionFailureError",
    "CannotConnectNowError",
    "TooManyConnectionsError",
}


def create_engine(url: str) -> AsyncEngine:
    """An asyncio engine for a plain `sqlite:///...` or `postgresql://...` URL.

    An SQLite file's directory is created here, so the default database in the user's data
    directory needs no set-up.
    """
    return engine_for(parse_url(url))


def engine_for(url: URL, *, exclusive: bool = False) -> AsyncEngine:
    """An engine for an already parsed URL; `exclusive` makes every SQLite transaction take
    the write lock up front (migrations), so concurrent upgrades queue instead of clashing."""
    if is_sqlite(url):
        return _sqlite_engine(url, begin="BEGIN IMMEDIATE" if exclusive else "BEGIN")
    return create_async_engine(url, pool_pre_ping=True, connect_args={"timeout": CONNECT_TIMEOUT})


def _sqlite_engine(url: URL, *, begin: str) -> AsyncEngine:
    path = sqlite_path(url)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseUnavailable(
                f"cannot create the directory of SQLite database {path}: {exc.strerror or exc}"
            ) from None
        # Open it once here: aiosqlite does not wait for its worker thread when opening fails,
        # and that thread would then report into a closed event loop after the error.
        try:
            sqlite3.connect(path).close()
        except sqlite3.Error as exc:
            raise DatabaseUnavailable(f"cannot open SQLite file {path}: {exc}") from None
    engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT})

    # Python's sqlite3 opens transactions lazily and never around DDL; taking over BEGIN makes
    # SQLite transactions real, so a migration or a seed either happens whole or not at all.
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql(begin)

    return engine


def upgrade_command(url: URL) -> str:
    """The exact command that brings the schema of `url` up to date."""
    try:
        configured = parse_url(Settings().resolved_database_url())
    except DatabaseError:
        configured = None
    if configured is not None and configured.render_as_string(
        hide_password=False
    ) == url.render_as_string(hide_password=False):
        return "streamer db upgrade"
    return f"streamer db upgrade --database-url '{display_url(url)}'"


def _root_cause(exc: BaseException) -> BaseException:
    seen: set[int] = set()
    while exc.__cause__ is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc = exc.__cause__
    return exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


_NOT_A_DATABASE = ("file is not a database", "database disk image is malformed")


def describe_failure(url: URL, exc: BaseException) -> DatabaseError | None:
    """The `DatabaseError` that explains `exc`, or None when `exc` is not a database failure."""
    where = endpoint(url)
    if isinstance(exc, DBAPIError):
        cause = _root_cause(exc.orig) if exc.orig is not None else exc
        name = type(cause).__name__
        message = _first_line(cause)
        if name in _LOGIN_ERRORS:
            return DatabaseUnavailable(
                f"PostgreSQL at {where} refused user {url.username or '(default)'!r}: {message}"
            )
        if name == "InvalidCatalogNameError":
            return DatabaseMissing(f"{message} at {where}; run `{upgrade_command(url)}`")
        if name in _MISSING_TABLE_ERRORS or "no such table" in message:
            return SchemaOutOfDate(
                f"the database {display_url(url)} has no settings table; "
                f"run `{upgrade_command(url)}`"
            )
        if name in _CONNECTION_ERRORS or isinstance(cause, OSError):
            return DatabaseUnavailable(f"lost the connection to PostgreSQL at {where}: {message}")
        if is_sqlite(url) and message in _NOT_A_DATABASE:
            return DatabaseCorrupt(
                f"{where} is not an SQLite database ({message}): move it away or point "
                "STREAMER_DATABASE_URL at another file"
            )
        if is_sqlite(url) and "unable to open database file" in message:
            return DatabaseUnavailable(f"cannot open {where}: {message}")
        return DatabaseUnavailable(f"database error at {where}: {message}")
    if isinstance(exc, TimeoutError):
        return DatabaseUnavailable(
            f"cannot reach PostgreSQL at {where}: no answer within {CONNECT_TIMEOUT:g} s"
        )
    if isinstance(exc, OSError):
        reason = exc.strerror or _first_line(exc)
        return DatabaseUnavailable(f"cannot reach PostgreSQL at {where}: {reason}")
    return None


@contextmanager
def translate_errors(url: URL) -> Iterator[None]:
    """Re-raise driver and network failures inside the block as one-line `DatabaseError`s."""
    try:
        yield
    except DatabaseError:
        raise
    except (DBAPIError, OSError) as exc:
        failure = describe_failure(url, exc)
        if failure is None:
            raise
        raise failure from exc
