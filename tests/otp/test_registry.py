"""Registry: unique names that always point at a live child."""

from __future__ import annotations

import asyncio

import pytest

from streamer.otp import (
    AlreadyStarted,
    ChildSpec,
    ChildState,
    DynamicSupervisor,
    Registry,
    Restart,
    Started,
    SupervisorFailed,
)
from tests.otp.probes import Probe, deaf_until, ended, running, settle


async def test_lookup_finds_the_live_child_by_name() -> None:
    """A named child is found by its name while it runs, and names() lists it."""
    registry = Registry()
    probe = Probe()
    sup = DynamicSupervisor()
    task = await running(sup)
    child = await sup.start_child(probe.spec("a", name=(registry, "ETHUSDT")))
    assert registry.lookup("ETHUSDT") is child
    assert registry.lookup("BTCUSDT") is None
    assert registry.names() == ["ETHUSDT"]
    await sup.stop()
    await task


@pytest.mark.parametrize("ending", ["crash", "exit", "terminate"])
async def test_name_vanishes_when_the_child_ends(ending: str) -> None:
    """A name is released when its child ends, however it ends."""
    registry = Registry()
    probe = Probe()
    sup = DynamicSupervisor()
    task = await running(sup)
    spec = probe.spec("a", restart=Restart.TEMPORARY, name=(registry, "ETHUSDT"))
    child = await sup.start_child(spec)
    if ending == "crash":
        probe.crash("a", RuntimeError("boom"))
    elif ending == "exit":
        probe.exit("a")
    else:
        await sup.terminate_child(child)
    await settle(sup, child)
    assert registry.lookup("ETHUSDT") is None
    assert registry.names() == []
    await sup.stop()
    await task


async def test_restarted_child_holds_its_name_again() -> None:
    """After a crash and restart, the name points at the same handle, running again."""
    registry = Registry()
    probe = Probe()
    sup = DynamicSupervisor()
    task = await running(sup)
    child = await sup.start_child(probe.spec("a", name=(registry, "ETHUSDT")))
    probe.crash("a", RuntimeError("boom"))
    await settle(sup, child)
    assert registry.lookup("ETHUSDT") is child
    assert child.restarts == 1
    await sup.stop()
    await task
    assert registry.names() == []


async def test_abandoned_child_keeps_its_name_until_its_task_ends() -> None:
    """A child abandoned after its shutdown timeout holds its name until its task has ended."""
    registry = Registry()
    release = asyncio.Event()

    async def stubborn(started: Started) -> None:
        started()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await deaf_until(release)

    sup = DynamicSupervisor()
    task = await running(sup)
    spec = ChildSpec("stubborn", stubborn, shutdown=0.01, name=(registry, "X"))
    child = await sup.start_child(spec)
    stuck = child.task
    assert stuck is not None
    await sup.terminate_child(child)
    assert registry.lookup("X") is child
    states = [child.state]
    release.set()
    await asyncio.wait({stuck})
    assert registry.lookup("X") is None
    states.append(child.state)
    assert states == [ChildState.ABANDONED, ChildState.STOPPED]
    await sup.stop()
    await task


async def test_two_supervisors_cannot_share_a_name() -> None:
    """A name is unique across every supervisor using the registry."""
    registry = Registry()
    probe = Probe()
    first, second = DynamicSupervisor(name="one"), DynamicSupervisor(name="two")
    tasks = [await running(first), await running(second)]
    holder = await first.start_child(probe.spec("a", name=(registry, "ETHUSDT")))
    with pytest.raises(AlreadyStarted) as caught:
        await second.start_child(probe.spec("b", name=(registry, "ETHUSDT")))
    assert caught.value.child is holder
    assert caught.value.name == "ETHUSDT"
    await first.stop()
    await second.stop()
    await asyncio.gather(*tasks)


async def hold_up(supervisor: DynamicSupervisor) -> asyncio.Event:
    """Keep the supervisor busy restarting another child until the returned gate is set."""
    gate = asyncio.Event()
    restarting = asyncio.Event()
    starts = 0

    async def slow_restart(started: Started) -> None:
        nonlocal starts
        starts += 1
        if starts == 1:
            started()
            raise RuntimeError("first crash")
        restarting.set()
        await gate.wait()
        started()
        await asyncio.Event().wait()

    await supervisor.start_child(ChildSpec("slow", slow_restart))
    await restarting.wait()
    return gate


async def test_crashed_child_keeps_its_name_until_restarted() -> None:
    """Between a crash and its restart, the name still finds the child, so no lookup misses it."""
    registry = Registry()
    probe = Probe()
    sup = DynamicSupervisor()
    task = await running(sup)
    child = await sup.start_child(probe.spec("a", name=(registry, "ETHUSDT")))
    gate = await hold_up(sup)
    probe.crash("a", RuntimeError("boom"))
    await ended(child)
    states = [child.state]
    assert registry.lookup("ETHUSDT") is child
    gate.set()
    await sup.sync()
    states.append(child.state)
    assert registry.lookup("ETHUSDT") is child
    assert states == [ChildState.STOPPED, ChildState.RUNNING]
    await sup.stop()
    await task


async def test_terminating_a_crashed_child_before_its_restart_frees_the_name() -> None:
    """A child terminated while awaiting its restart is not restarted and gives its name up."""
    registry = Registry()
    probe = Probe()
    sup = DynamicSupervisor()
    task = await running(sup)
    child = await sup.start_child(probe.spec("a", name=(registry, "ETHUSDT")))
    gate = await hold_up(sup)
    probe.crash("a", RuntimeError("boom"))
    await ended(child)
    await sup.terminate_child(child)
    assert registry.names() == []
    gate.set()
    await sup.sync()
    assert probe.starts("a") == 1
    assert registry.names() == []
    await sup.stop()
    await task


async def test_escalation_frees_every_name() -> None:
    """A supervisor that fails leaves no name behind, the crashed child's included."""
    registry = Registry()
    probe = Probe()
    sup = DynamicSupervisor(max_restarts=0)
    task = await running(sup)
    await sup.start_child(probe.spec("a", name=(registry, "A")))
    await sup.start_child(probe.spec("b", name=(registry, "B")))
    probe.crash("a", RuntimeError("boom"))
    with pytest.raises(SupervisorFailed):
        await task
    assert registry.names() == []
