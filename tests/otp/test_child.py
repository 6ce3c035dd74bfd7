"""Child handles: kill, outside cancellation, handshake, abandonment, brutal kill, clean exits."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

import pytest

from streamer.otp import (
    AlreadyStarted,
    ChildSpec,
    ChildState,
    DynamicSupervisor,
    Ignore,
    Registry,
    Restart,
    Shutdown,
    Started,
    StartError,
    Strategy,
    Supervisor,
)
from streamer.otp.spec import Body
from tests.otp.probes import Probe, deaf_until, running, settle


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


def stuck_until(release: asyncio.Event, cleaned: list[str], id: str) -> Body:
    """A body that, once cancelled, cleans up only after `release` is set, deaf to its kill."""

    async def body(started: Started) -> None:
        started()
        try:
            await asyncio.Event().wait()
        finally:
            await deaf_until(release)
            cleaned.append(id)

    return body


async def test_abandoned_child_blocks_a_restart_of_its_name_until_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A child abandoned past its shutdown time keeps its name, so no second worker can start,
    shows as `abandoned`, and frees the name (with a log line) only once its task has ended."""
    registry = Registry()
    release = asyncio.Event()
    cleaned: list[str] = []
    sup = DynamicSupervisor(name="streams")
    task = await running(sup)
    body = stuck_until(release, cleaned, "first")
    first = await sup.start_child(ChildSpec("ETHUSDT", body, shutdown=0.01, name=(registry, "E")))
    stuck = first.task
    assert stuck is not None
    await sup.terminate_child(first)
    assert first.state is ChildState.ABANDONED
    assert first.describe()["state"] == "abandoned"
    probe = Probe()
    with pytest.raises(AlreadyStarted) as caught:
        await sup.start_child(probe.spec("ETHUSDT", name=(registry, "E")))
    assert caught.value.child is first
    assert "abandoned" in str(caught.value)
    assert probe.starts("ETHUSDT") == 0
    assert registry.lookup("E") is first
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("ETHUSDT" in m and "abandoned" in m for m in errors)
    release.set()
    await asyncio.wait({stuck})
    assert cleaned == ["first"]
    assert registry.lookup("E") is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("ETHUSDT" in m and "free again" in m for m in warnings)
    second = await sup.start_child(probe.spec("ETHUSDT", name=(registry, "E")))
    assert registry.lookup("E") is second
    await sup.stop()
    await task


async def test_abandoned_sibling_restarts_only_once_its_task_has_ended() -> None:
    """A one_for_all restart that had to abandon a sibling starts it again only after the
    abandoned run ended, never two runs of it at once."""
    release = asyncio.Event()
    cleaned: list[str] = []
    runs = 0

    async def stubborn(started: Started) -> None:
        nonlocal runs
        runs += 1
        await stuck_until(release, cleaned, f"run{runs}")(started)

    probe = Probe()
    sup = Supervisor(
        [probe.spec("a"), ChildSpec("stubborn", stubborn, shutdown=0.01)],
        strategy=Strategy.ONE_FOR_ALL,
    )
    task = await running(sup)
    a, stuck_child = sup.which_children()
    stuck = stuck_child.task
    assert stuck is not None
    probe.crash("a", RuntimeError("boom"))
    await settle(sup, a)
    assert probe.starts("a") == 2
    states = [stuck_child.state]
    assert runs == 1
    release.set()
    await asyncio.wait({stuck})
    await sup.sync()
    assert cleaned == ["run1"]
    assert runs == 2
    states.append(stuck_child.state)
    assert states == [ChildState.ABANDONED, ChildState.RUNNING]
    assert stuck_child.restarts == 1
    await sup.stop()
    await task


async def test_brutal_kill_cuts_the_cleanup_at_its_first_await(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """shutdown=0 (OTP's brutal_kill): the synchronous part of the cleanup runs, the part it
    awaits never does, and once terminate returns the child has ended and its name is free."""
    registry = Registry()
    cleaned: list[str] = []

    async def body(started: Started) -> None:
        started()
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.append("synchronous part")
            await asyncio.sleep(10)
            cleaned.append("awaited part")

    sup = DynamicSupervisor()
    task = await running(sup)
    child = await sup.start_child(ChildSpec("k", body, shutdown=0, name=(registry, "K")))
    killed = child.task
    assert killed is not None
    await sup.terminate_child(child)
    assert killed.done()
    assert cleaned == ["synchronous part"]
    assert registry.lookup("K") is None
    assert child.state is ChildState.STOPPED
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    await sup.stop()
    await task


async def test_a_brutal_kill_the_child_survives_abandons_it_until_it_ends() -> None:
    """A child deaf to every cancellation outlives even its brutal kill: it is abandoned and
    keeps its name until its cleanup has finished."""
    registry = Registry()
    release = asyncio.Event()
    cleaned: list[str] = []
    sup = DynamicSupervisor()
    task = await running(sup)
    body = stuck_until(release, cleaned, "killed")
    child = await sup.start_child(ChildSpec("k", body, shutdown=0, name=(registry, "K")))
    killed = child.task
    assert killed is not None
    await sup.terminate_child(child)
    assert not killed.done()
    assert child.state is ChildState.ABANDONED
    assert registry.lookup("K") is child
    release.set()
    await asyncio.wait({killed})
    assert cleaned == ["killed"]
    assert registry.lookup("K") is None
    await sup.stop()
    await task


@pytest.mark.parametrize("term", [None, "maintenance"], ids=["shutdown", "shutdown-term"])
@pytest.mark.parametrize("how", ["raise", "kill"])
async def test_transient_child_exiting_with_shutdown_is_not_restarted_nor_logged_as_a_crash(
    term: str | None, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    """OTP's `shutdown` and `{shutdown, term}` are clean exits: a transient child that raises
    them, or is killed with them, stays stopped and no crash is logged."""
    caplog.set_level(logging.INFO, "streamer.otp")
    reason = Shutdown(term)
    probe = Probe()
    sup = DynamicSupervisor()
    task = await running(sup)
    child = await sup.start_child(probe.spec("a", restart=Restart.TRANSIENT))
    if how == "raise":
        probe.crash("a", reason)
    else:
        child.kill(reason)
    await settle(sup, child)
    assert probe.starts("a") == 1
    assert sup.which_children() == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(str(reason) in r.getMessage() for r in caplog.records)
    await sup.stop()
    await task


async def test_permanent_child_exiting_with_shutdown_is_restarted() -> None:
    """A permanent child comes back even after a clean `shutdown` exit, as in OTP."""
    probe = Probe()
    sup = DynamicSupervisor()
    task = await running(sup)
    child = await sup.start_child(probe.spec("a"))
    probe.crash("a", Shutdown("rotating"))
    await settle(sup, child)
    assert probe.starts("a") == 2
    await sup.stop()
    await task


def ignoring(reason: str) -> Body:
    async def body(started: Started) -> None:
        raise Ignore(reason)

    return body


async def test_init_returning_ignore_starts_nothing_and_keeps_the_supervisor_going() -> None:
    """A dynamic child raising Ignore before started() makes start_child succeed with an
    `ignored` handle that is not kept, frees its name, and the supervisor runs on."""
    registry = Registry()
    sup = DynamicSupervisor()
    task = await running(sup)
    child = await sup.start_child(ChildSpec("x", ignoring("not listed"), name=(registry, "X")))
    assert child.state is ChildState.IGNORED
    assert child.task is None
    assert sup.which_children() == []
    assert registry.names() == []
    assert sup.state is ChildState.RUNNING
    await sup.stop()
    await task


async def test_ignore_raised_after_started_is_a_crash() -> None:
    """Ignore is an answer to being started: raised once running, it is an ordinary crash."""
    started_once = asyncio.Event()
    starts = 0

    async def late(started: Started) -> None:
        nonlocal starts
        starts += 1
        started()
        if starts == 1:
            raise Ignore("too late")
        started_once.set()
        await asyncio.Event().wait()

    sup = DynamicSupervisor()
    task = await running(sup)
    await sup.start_child(ChildSpec("late", late))
    await started_once.wait()
    assert starts == 2
    await sup.stop()
    await task
