"""Child specs: OTP's defaults and refusal of impossible values."""

from __future__ import annotations

import pytest

from streamer.otp import ChildSpec, ChildType, Restart, Started


async def idle(started: Started) -> None:
    started()


def test_defaults_are_otps_worker_defaults() -> None:
    """A spec defaults to a permanent worker with a five-second shutdown and no name."""
    spec = ChildSpec("a", idle)
    assert spec.restart is Restart.PERMANENT
    assert spec.type is ChildType.WORKER
    assert spec.shutdown == 5.0
    assert spec.name is None


def test_empty_id_is_refused() -> None:
    """Every child needs an id to be logged and described by."""
    with pytest.raises(ValueError, match="non-empty id"):
        ChildSpec("", idle)


def test_negative_shutdown_is_refused() -> None:
    """A negative shutdown time is refused with a clear message."""
    with pytest.raises(ValueError, match="shutdown must be"):
        ChildSpec("a", idle, shutdown=-1.0)


def test_enums_compare_equal_to_their_otp_names() -> None:
    """The enums are strings spelled as in OTP, so plain data and config can use them."""
    assert Restart("transient") is Restart.TRANSIENT
    assert str(ChildType.SUPERVISOR) == "supervisor"
