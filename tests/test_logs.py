"""Logging set-up: one handler on stderr at the chosen level, however often it is called."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from streamer.logs import configure_logging


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


def test_the_chosen_level_applies_to_the_whole_process() -> None:
    """`configure_logging("warning")` sets the root logger to WARNING."""
    configure_logging("warning")

    assert logging.getLogger().level == logging.WARNING


def test_configuring_twice_never_doubles_lines() -> None:
    """A second call replaces the handler instead of adding another."""
    configure_logging("INFO")
    configure_logging("INFO")

    assert len(logging.getLogger().handlers) == 1
