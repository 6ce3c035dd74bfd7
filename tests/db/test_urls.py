"""Plain database URLs in, asyncio-driver URLs out."""

from __future__ import annotations

import pytest

from streamer.db import InvalidDatabaseUrl
from streamer.db.urls import display_url, endpoint, parse_url, sqlite_path


@pytest.mark.parametrize(
    ("plain", "driver"),
    [
        ("sqlite:///streamer.db", "sqlite+aiosqlite"),
        ("sqlite:////var/lib/streamer.db", "sqlite+aiosqlite"),
        ("postgresql://alice@db.example/streamer", "postgresql+asyncpg"),
        ("postgres://alice@db.example/streamer", "postgresql+asyncpg"),
        ("postgresql+psycopg://alice@db.example/streamer", "postgresql+asyncpg"),
    ],
)
def test_plain_urls_get_the_projects_driver(plain: str, driver: str) -> None:
    """Users write plain URLs; the project picks aiosqlite or asyncpg."""
    assert parse_url(plain).drivername == driver


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("mysql://root@localhost/streamer", "unsupported database 'mysql'"),
        ("not a url", "invalid database URL"),
        ("sqlite://", "needs a file"),
        ("postgresql://alice@db.example", "needs a database name"),
    ],
)
def test_unusable_urls_are_one_line_errors(url: str, complaint: str) -> None:
    """Other databases, garbage and incomplete URLs raise InvalidDatabaseUrl saying why."""
    with pytest.raises(InvalidDatabaseUrl, match=complaint) as caught:
        parse_url(url)
    assert "\n" not in str(caught.value)


def test_display_hides_the_password_and_the_driver() -> None:
    """Messages show the URL as the user wrote it, minus the password."""
    shown = display_url(parse_url("postgresql://alice:s3cret@db.example:6543/streamer"))
    assert shown == "postgresql://alice:***@db.example:6543/streamer"


def test_endpoint_names_host_and_port_or_file() -> None:
    """Errors say where: host:port (5432 by default) or the SQLite file."""
    assert endpoint(parse_url("postgresql://alice@db.example/streamer")) == "db.example:5432"
    assert endpoint(parse_url("sqlite:////tmp/x.db")) == "SQLite file /tmp/x.db"


def test_sqlite_path_is_none_in_memory() -> None:
    """An in-memory SQLite database has no file to create a directory for."""
    assert sqlite_path(parse_url("sqlite:///:memory:")) is None
    assert str(sqlite_path(parse_url("sqlite:////tmp/a/b.db"))) == "/tmp/a/b.db"


@pytest.mark.parametrize("url", ["postgresql://u@127.0.0.1:99999/x", "postgresql://u@h:0/x"])
def test_a_port_outside_the_tcp_range_is_refused(url: str) -> None:
    """A database URL with a port outside 1-65535 is a one-line error, not a driver crash."""
    with pytest.raises(InvalidDatabaseUrl, match="a port is 1 to 65535"):
        parse_url(url)
