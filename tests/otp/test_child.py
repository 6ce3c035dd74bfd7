"""Child handles: kill, outside cancellation, start handshake failures, shutdown errors."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

import pytest

from streamer.otp import ChildSpec, ChildState, DynamicSupervisor, Started, StartError
from tests.otp.probes import Probe, running, settle


async def test_kill_crashes_the_child_with_the_reason(caplog: pytest.LogCaptureFixture) -> None:
    """kill(reason) is seen as a crash with that reason: logged with the id, then restarted."""
    probe = Probe()
    sup = DynamicSupervisor(name="dyn")
    task = await running(sup)
    child = await sup.start_child(probe.spec("worker"))
    child.kill(RuntimeError("injected fault"))
    await settle(sup, child)
    assert probe.starts("worker") == 2
    crashes = [r for r in caplog.records if "crashed" in r.getMessage()]
    assert len(crashes) == 1
    assert "worker" in crashes[0].getMessage()
    assert "injected fault" in crashes[0].getMessage()
    await sup.stop()
    await task


async def test_kill_during_start_fails_the_start_with_the_reason() -> None:
    """A child killed before it called started() makes its start fail with the kill reason."""
    entered = asyncio.Event()
    sup = DynamicSupervisor()
    task = await running(sup)

    async def waits(started: Started) -> None:
        entered.set()
        await asyncio.Event().wait()

    starting = asyncio.create_task(sup.start_child(ChildSpec("waits", waits)))
    await entered.wait()
    (child,) = sup.which_children()
    child.kill(ConnectionResetError("gone"))
    with pytest.raises(StartError) as caught:
        await starting
    assert isinstance(caught.value.reason, ConnectionResetError)
    await sup.stop()
    await task


async def test_kill_of_a_stopped_child_does_nothing() -> None:
    """Killing a child that is no longer running changes nothing."""
    probe = Probe()
    sup = DynamicSupervisor()
    task = await running(sup)
    child = await sup.start_child(probe.spec("a"))
    await sup.terminate_child(child)
    child.kill(RuntimeError("late"))
    await sup.sync()
    assert probe.starts("a") == 1
    assert child.state is ChildState.STOPPED
    await sup.stop()
    await task


async def test_cancellation_from_outside_counts_as_a_crash() -> None:
    """A child task cancelled by anyone but its supervisor is restarted like a crash."""
    probe = Probe()
    sup = DynamicSupervisor()
    task = await running(sup)
    child = await sup.start_child(probe.spec("a"))
    child_task = child.task
    assert child_task is not None
    child_task.cancel()
    await settle(sup, child)
    assert probe.starts("a") == 2
    await sup.stop()
    await task


async def test_error_raised_while_shutting_down_is_logged_not_restarted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A child that raises while being shut down is logged at ERROR and still just stopped."""

    async def messy(started: Started) -> None:
        started()
        try:
            await asyncio.Event().wait()
        finally:
            raise OSError("flush failed")

    sup = DynamicSupervisor()
    task = await running(sup)
    child = await sup.start_child(ChildSpec("messy", messy))
    await sup.terminate_child(child)
    assert child.state is ChildState.STOPPED
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("messy" in m and "flush failed" in m for m in errors)
    await sup.stop()
    await task


async def test_body_that_cannot_even_be_called_fails_the_start() -> None:
    """A start function raising before returning its coroutine is a start failure."""

    def wrong(started: Started) -> Coroutine[Any, Any, None]:
        raise TypeError("wrong arguments")

    sup = DynamicSupervisor()
    task = await running(sup)
    with pytest.raises(StartError) as caught:
        await sup.start_child(ChildSpec("wrong", wrong))
    assert isinstance(caught.value.reason, TypeError)
    await sup.stop()
    await task


async def test_describe_reports_the_child_as_plain_data() -> None:
    """A child's description carries its id, name, type, restart, state, count and start time."""
    probe = Probe()
    sup = DynamicSupervisor()
    task = await running(sup)
    child = await sup.start_child(probe.spec("a"))
    data = child.describe()
    assert data["id"] == "a"
    assert data["name"] is None
    assert data["type"] == "worker"
    assert data["restart"] == "permanent"
    assert data["state"] == "running"
    assert data["restarts"] == 0
    assert isinstance(data["started_at"], str)
    await sup.stop()
    await task
