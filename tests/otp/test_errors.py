"""Errors carry what a caller needs to react: the reason, the live child, the limit."""

from __future__ import annotations

import pytest

from streamer.errors import StreamerError
from streamer.otp import (
    AlreadyPresent,
    AlreadyStarted,
    Child,
    ChildNotFound,
    ChildRestarting,
    ChildRunning,
    ChildSpec,
    Ignore,
    MaxChildrenReached,
    Shutdown,
    Started,
    StartError,
    SupervisorFailed,
    SupervisorNotRunning,
)


async def idle(started: Started) -> None:
    started()


def test_already_started_is_a_start_error_carrying_the_holder() -> None:
    """AlreadyStarted can be caught as StartError and hands back the child holding the name."""
    holder = Child(ChildSpec("ethusdt", idle), "streams")
    error = AlreadyStarted("other", "ETHUSDT", holder)
    assert isinstance(error, StartError)
    assert error.child is holder
    assert "ETHUSDT" in str(error)


def test_max_children_reached_is_a_start_error() -> None:
    """MaxChildrenReached can be caught as StartError and names the limit."""
    error = MaxChildrenReached("a", 10)
    assert isinstance(error, StartError)
    assert "max_children=10" in str(error)


def test_supervisor_failed_says_who_failed_and_why() -> None:
    """SupervisorFailed's message names the supervisor, the last child and its reason."""
    error = SupervisorFailed("streams", "ETHUSDT", ConnectionError("reset"))
    assert "streams" in str(error)
    assert "ETHUSDT" in str(error)
    assert "reset" in str(error)


def test_supervisor_failed_is_otps_shutdown_exit() -> None:
    """A supervisor that gave up exits with `shutdown`, carrying the last failure as its reason."""
    cause = ConnectionError("reset")
    error = SupervisorFailed("streams", "ETHUSDT", cause)
    assert isinstance(error, Shutdown)
    assert error.reason is cause


@pytest.mark.parametrize(
    ("reason", "text"), [(None, "shutdown"), ("maintenance", "shutdown: maintenance")]
)
def test_shutdown_reads_as_otps_exit_reason(reason: str | None, text: str) -> None:
    """Shutdown() is OTP's `shutdown` and Shutdown(term) its `{shutdown, term}`."""
    error = Shutdown(reason)
    assert str(error) == text
    assert error.reason == reason


def test_runtime_api_errors_name_the_child_and_can_be_caught_as_streamer_errors() -> None:
    """OTP's already_present, running, restarting and not_found are StreamerErrors that say why."""
    child = Child(ChildSpec("ethusdt", idle), "streams")
    present = AlreadyPresent(child)
    assert isinstance(present, StartError)
    assert present.child is child
    for error in (ChildRunning(child), ChildRestarting(child)):
        assert isinstance(error, StreamerError)
        assert isinstance(error, RuntimeError)
        assert "ethusdt" in str(error)
    assert "restarted" in str(ChildRestarting(child))
    assert isinstance(ChildNotFound("x"), LookupError)
    assert isinstance(SupervisorNotRunning("x"), StreamerError)
    assert isinstance(Ignore("x"), StreamerError)
