"""What both supervisors share: restart rule, run/stop life cycle, sync, nesting spec."""

from __future__ import annotations

import asyncio

import pytest

from streamer.otp import (
    ChildSpec,
    ChildState,
    ChildType,
    DynamicSupervisor,
    Restart,
    Shutdown,
    Started,
    Supervisor,
    SupervisorFailed,
)
from streamer.otp.base import should_restart
from tests.otp.probes import FakeClock, Probe, running, settle

REASONS: dict[str, BaseException | None] = {
    "normal": None,
    "shutdown": Shutdown(),
    "shutdown-term": Shutdown("maintenance"),
    "supervisor-gave-up": SupervisorFailed("streams", "ETHUSDT", RuntimeError("boom")),
    "crash": RuntimeError("boom"),
}


@pytest.mark.parametrize("restart", list(Restart))
@pytest.mark.parametrize("ending", list(REASONS))
def test_restart_rule_follows_otp(restart: Restart, ending: str) -> None:
    """Permanent always, transient after a crash only (normal, `shutdown`, `{shutdown, term}`
    and a supervisor giving up are not crashes), temporary never."""
    expected = restart is Restart.PERMANENT or (restart is Restart.TRANSIENT and ending == "crash")
    assert should_restart(restart, REASONS[ending]) is expected


async def test_running_twice_at_once_is_refused() -> None:
    """A supervisor is one process: a second concurrent run() is an error."""
    sup = DynamicSupervisor()
    task = await running(sup)
    with pytest.raises(RuntimeError, match="already running"):
        await sup.run()
    await sup.stop()
    await task


async def test_stop_of_a_supervisor_that_never_ran_returns() -> None:
    """stop() on a supervisor that is not running returns at once and leaves it stopped."""
    sup = Supervisor([])
    await sup.stop()
    assert sup.state is ChildState.STOPPED


async def test_stop_during_start_skips_the_remaining_children() -> None:
    """A stop() arriving while children are starting stops the started ones and starts no more."""
    probe = Probe()
    gate = asyncio.Event()
    entered = asyncio.Event()

    async def slow(started: Started) -> None:
        entered.set()
        await gate.wait()
        started()
        await asyncio.Event().wait()

    sup = Supervisor([probe.spec("a"), ChildSpec("slow", slow), probe.spec("c")])
    task = asyncio.create_task(sup.run())
    await entered.wait()
    stopping = asyncio.create_task(sup.stop())
    await asyncio.sleep(0)
    gate.set()
    await stopping
    await task
    assert probe.log == ["start:a", "stop:a"]
    assert sup.state is ChildState.STOPPED


async def test_child_spec_nests_the_supervisor_with_unlimited_shutdown() -> None:
    """child_spec() names the supervisor, marks it a supervisor and never abandons it."""
    sup = Supervisor([], name="streams")
    spec = sup.child_spec(restart=Restart.TRANSIENT)
    assert spec.id == "streams"
    assert spec.type is ChildType.SUPERVISOR
    assert spec.shutdown is None
    assert spec.restart is Restart.TRANSIENT
    assert sup.child_spec("other").id == "other"


async def test_sync_returns_after_the_pending_restart_is_done() -> None:
    """sync() returns only once a crash already reported has led to the restart."""
    probe = Probe()
    sup = DynamicSupervisor()
    task = await running(sup)
    child = await sup.start_child(probe.spec("a"))
    crashed = child.task
    assert crashed is not None
    probe.crash("a", RuntimeError("boom"))
    await asyncio.wait({crashed})
    assert probe.starts("a") == 1
    await sup.sync()
    assert probe.starts("a") == 2
    await sup.stop()
    await task


async def test_sync_of_a_stopped_supervisor_returns() -> None:
    """sync() on a supervisor that is not running does not wait."""
    await DynamicSupervisor().sync()


async def test_stop_interrupts_a_restart_stuck_in_its_handshake() -> None:
    """stop() returns even while a restarted child never signals it has started."""
    starts = 0
    second_start = asyncio.Event()

    async def hangs_on_restart(started: Started) -> None:
        nonlocal starts
        starts += 1
        if starts == 1:
            started()
            raise RuntimeError("crash")
        second_start.set()
        await asyncio.Event().wait()

    sup = DynamicSupervisor()
    task = await running(sup)
    child = await sup.start_child(ChildSpec("hangs", hangs_on_restart))
    await second_start.wait()
    await sup.stop()
    await task
    assert child.task is None
    assert sup.state is ChildState.STOPPED


async def test_cancellation_while_stopping_still_stops_every_child() -> None:
    """A second cancellation during the stop does not cut it short: all children still stop."""
    probe = Probe()
    cleaning = asyncio.Event()
    release = asyncio.Event()

    async def slow_to_stop(started: Started) -> None:
        started()
        try:
            await asyncio.Event().wait()
        finally:
            cleaning.set()
            await release.wait()

    sup = Supervisor([probe.spec("a"), ChildSpec("slow", slow_to_stop)])
    task = await running(sup)
    task.cancel()
    await cleaning.wait()
    task.cancel()
    await asyncio.sleep(0)
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert probe.log == ["start:a", "stop:a"]


async def test_recent_restarts_counts_only_restarts_inside_the_window() -> None:
    """recent_restarts() and describe() show the restarts that still count toward failing."""
    clock = FakeClock()
    probe = Probe()
    sup = Supervisor([probe.spec("a")], max_restarts=5, max_seconds=10.0, clock=clock)
    task = await running(sup)
    for _ in range(2):
        child = sup.which_children()[0]
        probe.crash("a", RuntimeError("boom"))
        await settle(sup, child)
    assert sup.recent_restarts() == 2
    clock.now = 11.0
    assert sup.describe()["recent_restarts"] == 0
    await sup.stop()
    await task


def test_repr_names_the_kind_the_name_and_the_state() -> None:
    """A supervisor's repr says what it is, which one, and whether it runs, for logs and REPLs."""
    assert repr(DynamicSupervisor(name="streams")) == (
        "<DynamicSupervisor 'streams' stopped children=0>"
    )
