"""Errors carry what a caller needs to react: the reason, the live child, the limit."""

from __future__ import annotations

from streamer.otp import (
    AlreadyStarted,
    Child,
    ChildSpec,
    MaxChildrenReached,
    Started,
    StartError,
    SupervisorFailed,
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
