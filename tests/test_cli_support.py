"""Shared command behaviour: bad settings are one-line usage errors, never tracebacks."""

from __future__ import annotations

import pytest
import typer

from streamer.cli_support import exit_on_errors, settings_from
from streamer.db import UnknownSymbol


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A flag that was given wins over its STREAMER_ variable; one not given leaves it be."""
    monkeypatch.setenv("STREAMER_PORT", "9000")
    monkeypatch.setenv("STREAMER_HOST", "127.0.0.2")

    settings = settings_from(port=9100, host=None)

    assert (settings.host, settings.port) == ("127.0.0.2", 9100)


def test_a_setting_that_does_not_parse_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`STREAMER_PORT=abc` exits 2 with one line naming the variable."""
    monkeypatch.setenv("STREAMER_PORT", "abc")

    with pytest.raises(typer.Exit) as raised:
        settings_from()

    assert raised.value.exit_code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: invalid setting port (STREAMER_PORT)")
    assert len(err.strip().splitlines()) == 1


def test_an_unknown_log_level_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """`--log-level verbose` exits 2 listing the levels there are."""
    with pytest.raises(typer.Exit) as raised:
        settings_from(log_level="verbose")

    assert raised.value.exit_code == 2
    assert "DEBUG, INFO, WARNING, ERROR" in capsys.readouterr().err


def test_log_levels_are_read_in_any_case() -> None:
    """`--log-level debug` is accepted and normalised."""
    assert settings_from(log_level="debug").log_level == "DEBUG"


def test_errors_a_user_can_meet_become_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A database error inside `exit_on_errors` prints `error: ...` and exits 1."""
    with pytest.raises(typer.Exit) as raised, exit_on_errors():
        raise UnknownSymbol("XRPUSDT")

    assert raised.value.exit_code == 1
    assert capsys.readouterr().err.startswith("error: ")
