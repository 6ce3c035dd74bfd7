"""Database URLs as users write them, and as SQLAlchemy's asyncio drivers need them.

Users write `sqlite:///path` or `postgresql://user@host/db`; the driver is this project's choice
(aiosqlite, asyncpg), so a URL copied from psql or another tool works unchanged.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from streamer.db.errors import InvalidDatabaseUrl

_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
_ALIASES = {"postgres": "postgresql"}


def parse_url(url: str) -> URL:
    """The asyncio-driver form of `url`; `InvalidDatabaseUrl` for anything else."""
    try:
        parsed = make_url(url.strip())
    except ArgumentError:
        raise InvalidDatabaseUrl(
            f"invalid database URL {url!r}: expected sqlite:///path or postgresql://user@host/db"
        ) from None
    backend = parsed.get_backend_name()
    backend = _ALIASES.get(backend, backend)
    if backend not in _DRIVERS:
        raise InvalidDatabaseUrl(
            f"unsupported database {backend!r} in {display_url(parsed)}: "
            "use sqlite:///path or postgresql://user@host/db"
        )
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        raise InvalidDatabaseUrl(
            f"invalid port {parsed.port} in {display_url(parsed)}: a port is 1 to 65535"
        )
    if backend == "sqlite" and not parsed.database:
        raise InvalidDatabaseUrl(
            "an SQLite URL needs a file, e.g. sqlite:///streamer.db or sqlite:////abs/path.db"
        )
    if backend == "postgresql" and not parsed.database:
        raise InvalidDatabaseUrl(
            f"a PostgreSQL URL needs a database name, e.g. postgresql://user@host/streamer "
            f"(got {display_url(parsed)})"
        )
    return parsed.set(drivername=_DRIVERS[backend])


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def sqlite_path(url: URL) -> Path | None:
    """The file behind an SQLite URL, or None for an in-memory database."""
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        return None
    return Path(url.database)


def display_url(url: URL) -> str:
    """The URL as a user would write it, password hidden: safe for logs and error messages."""
    plain = url.set(drivername=_ALIASES.get(url.get_backend_name(), url.get_backend_name()))
    return plain.render_as_string(hide_password=True)


def endpoint(url: URL) -> str:
    """Where a server lives, for 'cannot reach host:port' messages."""
    if is_sqlite(url):
        return f"SQLite file {url.database}"
    return f"{url.host or 'localhost'}:{url.port or 5432}"
