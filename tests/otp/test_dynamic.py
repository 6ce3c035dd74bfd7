"""DynamicSupervisor: on-demand children, their restarts, limits, concurrent shutdown, stress."""

from __future__ import annotations

import asyncio
import logging

import pytest

from streamer.otp import (
    AlreadyStarted,
    ChildNotFound,
    ChildSpec,
    ChildState,
    DynamicSupervisor,
    MaxChildrenReached,
    Registry,
    Restart,
    Started,
    StartError,
    SupervisorFailed,
)
from tests.otp.probes import FakeClock, Probe, running, settle


async def test_start_child_returns_a_running_child() -> None:
    """start_child returns once the child called started(), and the child is counted."""
    probe = Probe()
    sup = DynamicSupervisor()
    task = await running(sup)
    child = await sup.start_child(probe.spec("a"))
    assert child.state is ChildState.RUNNING
    assert child.started_at is not None
    assert sup.which_children() == [child]
    assert sup.count_children() == {"specs": 1, "active": 1, "supervisors": 0, "workers": 1}
    await sup.stop()
    await task


async def test_start_failure_raises_the_reason_and_keeps_nothing() -> None:
    """A body raising before started() makes start_child raise StartError with that reason."""

    async def broken(started: Started) -> None:
        raise ValueError("bad symbol")

    sup = DynamicSupervisor()
    task = await running(sup)
    with pytest.raises(StartError) as caught:
        await sup.start_child(ChildSpec("broken", broken))
    assert isinstance(caught.value.reason, ValueError)
    assert sup.which_children() == []
    await sup.stop()
    await task


async def test_taken_name_raises_already_started_with_the_live_child() -> None:
    """Starting a child under a taken name fails and hands back the child holding it."""
    registry = Registry()
    probe = Probe()
    sup = DynamicSupervisor()
    task = await running(sup)
    first = await sup.start_child(probe.spec("a", name=(registry, "ETHUSDT")))
    with pytest.raises(AlreadyStarted) as caught:
        await sup.start_child(probe.spec("b", name=(registry, "ETHUSDT")))
    assert caught.value.child is first
    assert sup.which_children() == [first]
    assert probe.starts("b") == 0
    await sup.stop()
    await task


async def test_max_children_is_enforced_and_freed_by_termination() -> None:
    """Beyond max_children start_child fails; terminating a child frees its place."""
    probe = Probe()
    sup = DynamicSupervisor(max_children=1)
    task = await running(sup)
    first = await sup.start_child(probe.spec("a"))
    with pytest.raises(MaxChildrenReached):
        await sup.start_child(probe.spec("b"))
    await sup.terminate_child(first)
    second = await sup.start_child(probe.spec("b"))
    assert sup.which_children() == [second]
    await sup.stop()
    await task


async def test_start_child_on_a_stopped_supervisor_fails() -> None:
    """A supervisor that is not running refuses to start children."""
    probe = Probe()
    with pytest.raises(StartError, match="not running"):
        await DynamicSupervisor().start_child(probe.spec("a"))


async def test_terminate_child_stops_without_restart_and_forgets() -> None:
    """terminate_child shuts the child down, releases its name and forgets it for good."""
    registry = Registry()
    probe = Probe()
    sup = DynamicSupervisor()
    task = await running(sup)
    child = await sup.start_child(probe.spec("a", name=(registry, "ETHUSDT")))
    await sup.terminate_child(child)
    await sup.sync()
    assert probe.log == ["start:a", "stop:a"]
    assert registry.lookup("ETHUSDT") is None
    assert sup.which_children() == []
    with pytest.raises(ChildNotFound):
        await sup.terminate_child(child)
    await sup.stop()
    await task


@pytest.mark.parametrize("restart", list(Restart))
@pytest.mark.parametrize("crashes", [True, False], ids=["crash", "exit"])
async def test_restart_rules_apply_and_ended_children_are_forgotten(
    restart: Restart, crashes: bool
) -> None:
    """A child comes back per its restart type; one that does not is removed from the list."""
    probe = Probe()
    sup = DynamicSupervisor()
    task = await running(sup)
    child = await sup.start_child(probe.spec("a", restart=restart))
    if crashes:
        probe.crash("a", RuntimeError("boom"))
    else:
        probe.exit("a")
    await settle(sup, child)
    restarted = restart is Restart.PERMANENT or (restart is Restart.TRANSIENT and crashes)
    assert probe.starts("a") == 1 + restarted
    assert sup.which_children() == ([child] if restarted else [])
    assert child.restarts == int(restarted)
    await sup.stop()
    await task


async def test_exceeding_intensity_stops_all_children_and_fails() -> None:
    """Too many restarts in the window stop every child and make run() raise SupervisorFailed."""
    probe = Probe()
    sup = DynamicSupervisor(max_restarts=1, clock=FakeClock())
    task = await running(sup)
    await sup.start_child(probe.spec("a"))
    await sup.start_child(probe.spec("b"))
    probe.crash("a", RuntimeError("one"))
    await probe.wait_for("start:a", 2)
    probe.crash("a", RuntimeError("two"))
    with pytest.raises(SupervisorFailed):
        await task
    assert probe.log[-1] == "stop:b"
    assert sup.which_children() == []


async def test_stop_shuts_children_down_concurrently(caplog: pytest.LogCaptureFixture) -> None:
    """All children are cancelled at once: each one's cleanup waits for all the others."""
    count = 4
    cleaning = 0
    all_cleaning = asyncio.Event()

    async def body(started: Started) -> None:
        nonlocal cleaning
        started()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cleaning += 1
            if cleaning == count:
                all_cleaning.set()
            await all_cleaning.wait()
            raise

    sup = DynamicSupervisor()
    task = await running(sup)
    for index in range(count):
        await sup.start_child(ChildSpec(f"c{index}", body, shutdown=2.0))
    await sup.stop()
    await task
    assert all_cleaning.is_set()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_cancelled_start_child_shuts_the_half_started_child_down() -> None:
    """If the caller of start_child is cancelled mid-handshake, the child is stopped and dropped."""
    entered = asyncio.Event()
    stopped = asyncio.Event()

    async def slow(started: Started) -> None:
        entered.set()
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    sup = DynamicSupervisor()
    task = await running(sup)
    starting = asyncio.create_task(sup.start_child(ChildSpec("slow", slow)))
    await entered.wait()
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    assert stopped.is_set()
    assert sup.which_children() == []
    await sup.stop()
    await task


async def test_restarted_by_its_parent_it_comes_back_empty() -> None:
    """A dynamic supervisor started again begins with no children, as OTP's does."""
    probe = Probe()
    sup = DynamicSupervisor()
    task = await running(sup)
    await sup.start_child(probe.spec("a"))
    await sup.stop()
    await task
    task = await running(sup)
    assert sup.which_children() == []
    assert sup.describe()["children"] == []
    await sup.stop()
    await task


async def test_thousands_of_concurrent_starts_and_terminations_leave_nothing_behind(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """2,000 children started and terminated concurrently leave no task, name or warning."""
    registry = Registry()
    probe = Probe()
    sup = DynamicSupervisor(name="stress")
    task = await running(sup)
    specs = [probe.spec(f"s{i}", name=(registry, f"S{i}")) for i in range(2000)]
    children = await asyncio.gather(*(sup.start_child(spec) for spec in specs))
    assert sup.count_children()["active"] == 2000
    assert len(registry) == 2000
    await asyncio.gather(*(sup.terminate_child(child) for child in children))
    await sup.sync()
    assert sup.count_children()["specs"] == 0
    assert registry.names() == []
    assert asyncio.all_tasks() == {asyncio.current_task(), task}
    await sup.stop()
    await task
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert probe.log.count("stop:s1999") == 1
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_terminating_an_unknown_child_is_elixirs_not_found() -> None:
    """terminate_child of a child this supervisor never held raises ChildNotFound, the exception
    form of Elixir's `{:error, :not_found}`, and changes nothing."""
    probe = Probe()
    mine, other = DynamicSupervisor(name="mine"), DynamicSupervisor(name="other")
    tasks = [await running(mine), await running(other)]
    kept = await mine.start_child(probe.spec("a"))
    stranger = await other.start_child(probe.spec("b"))
    with pytest.raises(ChildNotFound, match="'b' is not a child of 'mine'"):
        await mine.terminate_child(stranger)
    assert mine.which_children() == [kept]
    assert stranger.state is ChildState.RUNNING
    await mine.stop()
    await other.stop()
    await asyncio.gather(*tasks)
