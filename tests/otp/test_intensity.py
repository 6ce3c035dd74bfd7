"""Restart accounting, checked exactly with a fake clock and against a model."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamer.otp import RestartIntensity
from tests.otp.probes import FakeClock


def test_allows_max_restarts_then_refuses_the_next() -> None:
    """Exactly max_restarts restarts fit in the window; one more exceeds the intensity."""
    clock = FakeClock()
    intensity = RestartIntensity(3, 5.0, clock)
    assert [intensity.add_restart() for _ in range(4)] == [True, True, True, False]


def test_zero_max_restarts_refuses_the_first_restart() -> None:
    """max_restarts=0 means any crash that asks for a restart escalates."""
    intensity = RestartIntensity(0, 5.0, FakeClock())
    assert intensity.add_restart() is False


def test_restart_out_of_the_window_no_longer_counts() -> None:
    """A restart older than max_seconds is forgotten, so a later one is allowed again."""
    clock = FakeClock()
    intensity = RestartIntensity(1, 5.0, clock)
    assert intensity.add_restart() is True
    clock.now = 5.5
    assert intensity.add_restart() is True
    clock.now = 6.0
    assert intensity.add_restart() is False


def test_restart_exactly_at_the_window_edge_still_counts() -> None:
    """As in OTP, a restart exactly max_seconds ago is still inside the window."""
    clock = FakeClock()
    intensity = RestartIntensity(1, 5.0, clock)
    intensity.add_restart()
    clock.now = 5.0
    assert intensity.add_restart() is False


def test_recent_counts_only_restarts_in_the_window() -> None:
    """recent() reports the restarts that would count against the limit now."""
    clock = FakeClock()
    intensity = RestartIntensity(10, 2.0, clock)
    intensity.add_restart()
    clock.now = 1.0
    intensity.add_restart()
    clock.now = 2.5
    assert intensity.recent() == 1


@pytest.mark.parametrize(("max_restarts", "max_seconds"), [(-1, 5.0), (3, 0.0), (3, -1.0)])
def test_rejects_impossible_limits(max_restarts: int, max_seconds: float) -> None:
    """Negative restart counts and non-positive windows are refused with a clear error."""
    with pytest.raises(ValueError, match="must be"):
        RestartIntensity(max_restarts, max_seconds, FakeClock())


@given(
    max_restarts=st.integers(min_value=0, max_value=6),
    max_seconds=st.floats(min_value=0.1, max_value=20.0),
    gaps=st.lists(st.floats(min_value=0.0, max_value=10.0), min_size=1, max_size=40),
)
def test_matches_a_list_of_timestamps_model(
    max_restarts: int, max_seconds: float, gaps: list[float]
) -> None:
    """Each decision equals: restarts within [now - max_seconds, now], this one included,
    number at most max_restarts."""
    clock = FakeClock()
    intensity = RestartIntensity(max_restarts, max_seconds, clock)
    history: list[float] = []
    for gap in gaps:
        clock.now += gap
        history.append(clock.now)
        in_window = [t for t in history if t >= clock.now - max_seconds]
        assert intensity.add_restart() is (len(in_window) <= max_restarts)
