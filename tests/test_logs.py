"""Logging set-up: one handler on stderr at the chosen level, however often it is called."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from streamer.logs import QUIET, configure_logging


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    quiet = {name: logging.getLogger(name).level for name in QUIET}
    yield
    root.handlers[:], root.level = handlers, level
    for name, before in quiet.items():
        logging.getLogger(name).setLevel(before)


def test_the_chosen_level_applies_to_the_whole_process() -> None:
    """`configure_logging("warning")` sets the root logger to WARNING."""
    configure_logging("warning")

    assert logging.getLogger().level == logging.WARNING


def test_configuring_twice_never_doubles_lines() -> None:
    """A second call replaces the handler instead of adding another."""
    configure_logging("INFO")
    configure_logging("INFO")

    assert len(logging.getLogger().handlers) == 1


def test_json_format_writes_one_object_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    """`--log-format json` gives one parseable object per record with time, level, logger,
    message (and the traceback of an exception)."""
    configure_logging("INFO", "json")
    logging.getLogger("streamer.test").info("Started streaming on %d symbols", 3)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("streamer.test").exception("It failed")

    lines = capsys.readouterr().err.splitlines()
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "Started streaming on 3 symbols"
    assert (first["level"], first["logger"]) == ("INFO", "streamer.test")
    assert first["time"].endswith("+00:00")
    assert "ValueError: boom" in second["exception"]


def test_routine_library_lines_are_held_back_but_warnings_pass(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """httpx's per-request INFO lines and uvicorn's start-up chatter are not shown; their
    warnings are, uvicorn's under `streamer.http`."""
    configure_logging("INFO")
    logging.getLogger("httpx").info('HTTP Request: GET http://x "HTTP/1.1 200 OK"')
    logging.getLogger("uvicorn.error").info("Waiting for application startup.")
    logging.getLogger("httpx").warning("something odd")
    logging.getLogger("uvicorn.error").error("Exception in ASGI application")

    err = capsys.readouterr().err
    assert "HTTP Request" not in err
    assert "Waiting for application startup" not in err
    assert "httpx: something odd" in err
    assert "streamer.http: Exception in ASGI application" in err
    assert "uvicorn" not in err


def test_alembic_keeps_only_the_migration_steps(capsys: pytest.CaptureFixture[str]) -> None:
    """Alembic's connection preamble is dropped; the revisions it applies are logged."""
    configure_logging("INFO")
    migration = logging.getLogger("alembic.runtime.migration")
    migration.info("Context impl SQLiteImpl.")
    migration.info("Will assume non-transactional DDL.")
    migration.info("Running upgrade  -> 0001, Create the settings table")

    assert capsys.readouterr().err.count("\n") == 1


def test_debug_shows_everything() -> None:
    """At DEBUG nothing is held back, library lines included."""
    configure_logging("DEBUG")

    assert logging.getLogger("httpx").getEffectiveLevel() == logging.DEBUG
