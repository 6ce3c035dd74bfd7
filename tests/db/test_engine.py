"""Engines and the translation of driver failures into one-line database errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from streamer.db import DatabaseUnavailable, create_engine
from streamer.db.engine import translate_errors, upgrade_command
from streamer.db.urls import parse_url


async def test_sqlite_directory_is_created_on_first_use(tmp_path: Path) -> None:
    """A database file in a directory that does not exist yet just works."""
    path = tmp_path / "a" / "b" / "streamer.db"
    engine = create_engine(f"sqlite:///{path}")
    try:
        async with engine.connect() as connection:
            assert await connection.scalar(sa.text("SELECT 1")) == 1
    finally:
        await engine.dispose()
    assert path.is_file()


def test_uncreatable_sqlite_directory_is_one_line(tmp_path: Path) -> None:
    """A directory that cannot be created (a file is in the way) is DatabaseUnavailable."""
    (tmp_path / "file").write_text("")
    with pytest.raises(DatabaseUnavailable, match="cannot create the directory"):
        create_engine(f"sqlite:///{tmp_path / 'file' / 'sub' / 'x.db'}")


async def _query_through(url: str) -> None:
    engine = create_engine(url)
    try:
        with translate_errors(engine.url):
            async with engine.connect() as connection:
                await connection.execute(sa.text("SELECT * FROM settings"))
    finally:
        await engine.dispose()


async def test_unopenable_sqlite_file_is_one_line(tmp_path: Path) -> None:
    """A path that is a directory cannot be opened: DatabaseUnavailable naming the file."""
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(DatabaseUnavailable, match="SQLite file") as caught:
        await _query_through(f"sqlite:///{tmp_path / 'dir.db'}")
    assert "\n" not in str(caught.value)


async def test_refused_connection_names_host_and_port() -> None:
    """Nothing listening at the port is DatabaseUnavailable naming host and port."""
    with pytest.raises(DatabaseUnavailable, match=r"cannot reach PostgreSQL at 127\.0\.0\.1:1"):
        await _query_through("postgresql://postgres@127.0.0.1:1/streamer")


def test_upgrade_command_omits_the_url_when_it_is_the_configured_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The hint is plain `streamer db upgrade` for the configured database, with the URL else."""
    monkeypatch.setenv("STREAMER_DATABASE_URL", "postgresql://alice@db.example/streamer")
    configured = parse_url("postgresql://alice@db.example/streamer")
    other = parse_url("sqlite:////tmp/other.db")
    assert upgrade_command(configured) == "streamer db upgrade"
    assert upgrade_command(other) == "streamer db upgrade --database-url 'sqlite:////tmp/other.db'"
