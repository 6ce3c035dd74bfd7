"""Supervisor: start order, strategy x restart type, intensity, escalation, nesting, runtime API."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from streamer.otp import (
    AlreadyPresent,
    AlreadyStarted,
    ChildNotFound,
    ChildRestarting,
    ChildRunning,
    ChildSpec,
    ChildState,
    DynamicSupervisor,
    Ignore,
    Registry,
    Restart,
    Started,
    StartError,
    Strategy,
    Supervisor,
    SupervisorFailed,
    SupervisorNotRunning,
)
from tests.otp.probes import FakeClock, Probe, deaf_until, running, settle

T = TypeVar("T")


async def test_starts_in_order_and_stops_in_reverse_order() -> None:
    """Children start in list order and are shut down in the reverse order on stop()."""
    probe = Probe()
    sup = Supervisor([probe.spec("a"), probe.spec("b"), probe.spec("c")])
    task = await running(sup)
    await sup.stop()
    await task
    assert probe.log == ["start:a", "start:b", "start:c", "stop:c", "stop:b", "stop:a"]


async def test_start_failure_rolls_back_in_reverse_and_fails_with_the_reason() -> None:
    """A child failing to start stops the started ones in reverse and run() raises its reason."""
    probe = Probe()

    async def broken(started: Started) -> None:
        raise ConnectionError("no database")

    sup = Supervisor([probe.spec("a"), probe.spec("b"), ChildSpec("db", broken), probe.spec("c")])
    with pytest.raises(StartError) as caught:
        await sup.run()
    assert isinstance(caught.value.reason, ConnectionError)
    assert caught.value.child_id == "db"
    assert probe.log == ["start:a", "start:b", "stop:b", "stop:a"]
    assert sup.state is ChildState.STOPPED


async def test_body_returning_before_started_is_a_start_failure() -> None:
    """A child that returns without calling started() fails the supervisor's start."""

    async def quits(started: Started) -> None:
        return None

    with pytest.raises(StartError, match="before it called started"):
        await Supervisor([ChildSpec("quits", quits)]).run()


def expected_restarts(strategy: Strategy, restart: Restart, position: str) -> int:
    """Starts of `before`/`subject`/`after` siblings beyond the first, after `subject` crashed."""
    if restart is Restart.TEMPORARY:
        return 0
    if position == "subject":
        return 1
    if strategy is Strategy.ONE_FOR_ALL:
        return 1
    if strategy is Strategy.REST_FOR_ONE and position == "after":
        return 1
    return 0


@pytest.mark.parametrize("strategy", list(Strategy))
@pytest.mark.parametrize("restart", list(Restart))
async def test_crash_restarts_by_strategy_and_restart_type(
    strategy: Strategy, restart: Restart
) -> None:
    """A crash restarts the child unless temporary, with the siblings its strategy names."""
    probe = Probe()
    sup = Supervisor(
        [probe.spec("before"), probe.spec("subject", restart=restart), probe.spec("after")],
        strategy=strategy,
    )
    task = await running(sup)
    subject = sup.which_children()[1]
    probe.crash("subject", RuntimeError("boom"))
    await settle(sup, subject)
    for position in ("before", "subject", "after"):
        assert probe.starts(position) == 1 + expected_restarts(strategy, restart, position)
    kept = [c.id for c in sup.which_children()]
    if restart is Restart.TEMPORARY:
        assert kept == ["before", "after"]
    else:
        assert kept == ["before", "subject", "after"]
    assert subject.restarts == expected_restarts(strategy, restart, "subject")
    await sup.stop()
    await task


@pytest.mark.parametrize("strategy", list(Strategy))
@pytest.mark.parametrize("restart", list(Restart))
async def test_normal_exit_restarts_only_permanent_children(
    strategy: Strategy, restart: Restart
) -> None:
    """A normal exit restarts a permanent child only; transient stays stopped, temporary goes."""
    probe = Probe()
    sup = Supervisor(
        [probe.spec("before"), probe.spec("subject", restart=restart), probe.spec("after")],
        strategy=strategy,
    )
    task = await running(sup)
    subject = sup.which_children()[1]
    probe.exit("subject")
    await settle(sup, subject)
    restarted = restart is Restart.PERMANENT
    assert probe.starts("subject") == 1 + restarted
    assert probe.starts("after") == 1 + (restarted and strategy is not Strategy.ONE_FOR_ONE)
    assert probe.starts("before") == 1 + (restarted and strategy is Strategy.ONE_FOR_ALL)
    ids = [c.id for c in sup.which_children()]
    assert ("subject" in ids) is (restart is not Restart.TEMPORARY)
    assert subject.state is (ChildState.RUNNING if restarted else ChildState.STOPPED)
    await sup.stop()
    await task


@pytest.mark.parametrize("strategy", list(Strategy))
@pytest.mark.parametrize("restart", list(Restart))
async def test_sibling_crash_restarts_or_drops_the_stopped_child(
    strategy: Strategy, restart: Restart
) -> None:
    """A child stopped for a sibling's restart comes back unless temporary, which is dropped."""
    probe = Probe()
    sup = Supervisor(
        [probe.spec("first"), probe.spec("subject", restart=restart)], strategy=strategy
    )
    task = await running(sup)
    first = sup.which_children()[0]
    probe.crash("first", RuntimeError("boom"))
    await settle(sup, first)
    affected = strategy is not Strategy.ONE_FOR_ONE
    assert probe.starts("first") == 2
    assert probe.starts("subject") == 1 + (affected and restart is not Restart.TEMPORARY)
    ids = [c.id for c in sup.which_children()]
    assert ("subject" in ids) is not (affected and restart is Restart.TEMPORARY)
    await sup.stop()
    await task


async def test_exceeding_intensity_stops_all_children_and_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """More than max_restarts crashes in the window stop every child in reverse, then escalate."""
    probe = Probe()
    sup = Supervisor(
        [probe.spec("a"), probe.spec("b"), probe.spec("c")], max_restarts=2, clock=FakeClock()
    )
    task = await running(sup)
    for count in (1, 2):
        probe.crash("b", RuntimeError(f"crash {count}"))
        await probe.wait_for("start:b", count + 1)
    probe.crash("b", RuntimeError("crash 3"))
    with pytest.raises(SupervisorFailed) as caught:
        await task
    assert str(caught.value.reason) == "crash 3"
    assert probe.log[-3:] == ["stop:b", "stop:c", "stop:a"]
    assert all(c.state is ChildState.STOPPED for c in sup.which_children())
    messages = [r.getMessage() for r in caplog.records]
    escalations = [m for m in messages if "more than 2 restarts" in m]
    assert len(escalations) == 1
    assert "child b" in escalations[0]
    assert "crash 3" in escalations[0]


async def test_crashes_spread_beyond_the_window_do_not_escalate() -> None:
    """Restarts that fell out of max_seconds no longer count toward the intensity."""
    clock = FakeClock()
    probe = Probe()
    sup = Supervisor([probe.spec("a")], max_restarts=1, max_seconds=5.0, clock=clock)
    task = await running(sup)
    for count in range(1, 5):
        clock.now += 6.0
        child = sup.which_children()[0]
        probe.crash("a", RuntimeError("boom"))
        await settle(sup, child)
        assert probe.starts("a") == count + 1
    assert sup.state is ChildState.RUNNING
    await sup.stop()
    await task


async def test_failed_restart_counts_toward_intensity() -> None:
    """A child that cannot be started again keeps counting restarts until the supervisor fails."""
    attempts = 0

    async def flaky(started: Started) -> None:
        nonlocal attempts
        attempts += 1
        if attempts > 1:
            raise ConnectionError("still down")
        started()
        raise RuntimeError("first crash")

    sup = Supervisor([ChildSpec("flaky", flaky)], max_restarts=3, clock=FakeClock())
    with pytest.raises(SupervisorFailed) as caught:
        await sup.run()
    assert isinstance(caught.value.reason, StartError)
    assert attempts == 4


async def test_escalation_through_two_levels_fails_the_root() -> None:
    """A leaf crash exceeding the middle supervisor's limit fails it, then the root's limit."""
    probe = Probe()
    middle = Supervisor([probe.spec("leaf")], max_restarts=0, name="middle", clock=FakeClock())
    root = Supervisor([middle.child_spec()], max_restarts=0, name="root", clock=FakeClock())
    task = await running(root)
    probe.crash("leaf", RuntimeError("leaf broke"))
    with pytest.raises(SupervisorFailed) as caught:
        await task
    assert caught.value.supervisor == "root"
    inner = caught.value.reason
    assert isinstance(inner, SupervisorFailed)
    assert inner.supervisor == "middle"
    assert str(inner.reason) == "leaf broke"
    assert probe.log == ["start:leaf", "stop:leaf"]


async def test_parent_restarts_a_failed_child_supervisor_afresh() -> None:
    """A child supervisor that escalated is restarted by its parent with new children."""
    probe = Probe()
    middle = Supervisor([probe.spec("leaf")], max_restarts=0, name="middle", clock=FakeClock())
    root = Supervisor([middle.child_spec()], max_restarts=1, name="root", clock=FakeClock())
    task = await running(root)
    first_leaf = middle.which_children()[0]
    probe.crash("leaf", RuntimeError("leaf broke"))
    await settle(root, root.which_children()[0])
    second_leaf = middle.which_children()[0]
    assert probe.log == ["start:leaf", "stop:leaf", "start:leaf"]
    assert second_leaf is not first_leaf
    assert second_leaf.restarts == 0
    assert root.which_children()[0].restarts == 1
    await root.stop()
    await task


async def test_shutdown_timeout_abandons_a_stuck_child_loudly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A child that ignores cancellation past its shutdown time is logged at ERROR and left."""
    release = asyncio.Event()
    probe = Probe()

    async def stubborn(started: Started) -> None:
        started()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await deaf_until(release)

    sup = Supervisor([probe.spec("a"), ChildSpec("stubborn", stubborn, shutdown=0.01)])
    task = await running(sup)
    stuck = sup.which_children()[1].task
    assert stuck is not None
    await sup.stop()
    await task
    assert not stuck.done()
    assert probe.log[-1] == "stop:a"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any("stubborn" in r.getMessage() and "abandoned" in r.getMessage() for r in errors)
    release.set()
    await asyncio.wait({stuck})


async def test_cancelling_run_stops_children_and_propagates() -> None:
    """Cancelling a supervisor's task stops its children in reverse order, then cancels it."""
    probe = Probe()
    sup = Supervisor([probe.spec("a"), probe.spec("b")])
    task = await running(sup)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert probe.log == ["start:a", "start:b", "stop:b", "stop:a"]


async def test_describe_is_plain_data_of_the_whole_subtree() -> None:
    """describe() gives JSON-ready data with ids, names, states, restarts and nested children."""
    registry = Registry()
    probe = Probe()
    dynamic = DynamicSupervisor(name="streams")
    sup = Supervisor([probe.spec("a"), dynamic.child_spec()], name="root")
    task = await running(sup)
    await dynamic.start_child(probe.spec("ETHUSDT", name=(registry, "ETHUSDT")))
    data = sup.describe()
    assert json.loads(json.dumps(data)) == data
    assert data["name"] == "root"
    assert [c["id"] for c in data["children"]] == ["a", "streams"]
    nested = data["children"][1]["supervisor"]
    assert nested["children"][0]["name"] == "ETHUSDT"
    assert nested["children"][0]["state"] == "running"
    assert nested["children"][0]["started_at"] is not None
    await sup.stop()
    await task


def test_duplicate_child_ids_are_refused() -> None:
    """Two children with one id are refused when the supervisor is built."""
    probe = Probe()
    with pytest.raises(ValueError, match="duplicate child ids"):
        Supervisor([probe.spec("a"), probe.spec("a")])


class Chapter:
    """The chapter's tree: rest_for_one over [dynamic supervisor, autostart child]."""

    SYMBOLS = ("ETHUSDT", "BTCUSDT")

    def __init__(self, autostart_restart: Restart, keeps_running: bool) -> None:
        self.registry = Registry()
        self.probe = Probe()
        self.autostarts = 0
        self.dynamic = DynamicSupervisor(name="streams")
        self.keeps_running = keeps_running
        self.sup = Supervisor(
            [
                self.dynamic.child_spec(),
                ChildSpec("autostart", self.autostart, restart=autostart_restart),
            ],
            strategy=Strategy.REST_FOR_ONE,
        )

    async def autostart(self, started: Started) -> None:
        self.autostarts += 1
        started()
        for symbol in self.SYMBOLS:
            await self.dynamic.start_child(self.probe.spec(symbol, name=(self.registry, symbol)))
        if self.keeps_running:
            await asyncio.Event().wait()


@pytest.mark.parametrize("keeps_running", [True, False], ids=["running", "finished"])
async def test_transient_autostart_re_creates_streams_after_dynamic_crash(
    keeps_running: bool,
) -> None:
    """With a transient autostart, killing the dynamic supervisor brings every stream back."""
    tree = Chapter(Restart.TRANSIENT, keeps_running)
    task = await running(tree.sup)
    dynamic_child, autostart_child = tree.sup.which_children()
    await tree.probe.wait_for("start:BTCUSDT")
    if not keeps_running:
        await settle(tree.sup, autostart_child)
    dynamic_child.kill(RuntimeError("dynamic supervisor crashed"))
    await settle(tree.sup, dynamic_child)
    await tree.probe.wait_for("start:BTCUSDT", 2)
    assert tree.autostarts == 2
    assert sorted(tree.registry.names()) == sorted(tree.SYMBOLS)
    for symbol in tree.SYMBOLS:
        child = tree.registry.lookup(symbol)
        assert child is not None
        assert child in tree.dynamic.which_children()
    await tree.sup.stop()
    await task


@pytest.mark.parametrize("keeps_running", [True, False], ids=["running", "finished"])
async def test_temporary_autostart_leaves_streams_dead_after_dynamic_crash(
    keeps_running: bool,
) -> None:
    """With a temporary autostart (the chapter's Task), the restarted dynamic supervisor stays
    empty."""
    tree = Chapter(Restart.TEMPORARY, keeps_running)
    task = await running(tree.sup)
    dynamic_child, autostart_child = tree.sup.which_children()
    await tree.probe.wait_for("start:BTCUSDT")
    if not keeps_running:
        await settle(tree.sup, autostart_child)
    dynamic_child.kill(RuntimeError("dynamic supervisor crashed"))
    await settle(tree.sup, dynamic_child)
    assert tree.autostarts == 1
    assert tree.registry.names() == []
    assert tree.dynamic.which_children() == []
    assert [c.id for c in tree.sup.which_children()] == ["streams"]
    await tree.sup.stop()
    await task


class StrategyModel:
    """OTP's restart rules on plain lists: which children run, exist, and how often they started."""

    def __init__(self, restarts: list[Restart], strategy: Strategy) -> None:
        self.restarts = restarts
        self.strategy = strategy
        self.present = list(range(len(restarts)))
        self.running = set(self.present)
        self.starts = [1] * len(restarts)

    def end(self, index: int, crashed: bool) -> None:
        self.running.discard(index)
        restart = self.restarts[index]
        if not should_restart_model(restart, crashed):
            if restart is Restart.TEMPORARY:
                self.present.remove(index)
            return
        position = self.present.index(index)
        if self.strategy is Strategy.ONE_FOR_ONE:
            group = [index]
        elif self.strategy is Strategy.ONE_FOR_ALL:
            group = list(self.present)
        else:
            group = self.present[position:]
        for sibling in reversed(group):
            self.running.discard(sibling)
            if sibling != index and self.restarts[sibling] is Restart.TEMPORARY:
                self.present.remove(sibling)
        for member in group:
            if member in self.present:
                self.running.add(member)
                self.starts[member] += 1


def should_restart_model(restart: Restart, crashed: bool) -> bool:
    return restart is Restart.PERMANENT or (restart is Restart.TRANSIENT and crashed)


@settings(max_examples=60, deadline=None)
@given(
    strategy=st.sampled_from(list(Strategy)),
    restarts=st.lists(st.sampled_from(list(Restart)), min_size=1, max_size=5),
    events=st.lists(st.tuples(st.integers(0, 4), st.booleans()), max_size=12),
)
def test_any_sequence_of_exits_matches_the_otp_model(
    strategy: Strategy, restarts: list[Restart], events: list[tuple[int, bool]]
) -> None:
    """For any children and any crashes and normal exits, starts and survivors match OTP's rules."""

    async def scenario() -> None:
        model = StrategyModel(restarts, strategy)
        probe = Probe()
        ids = [f"c{i}" for i in range(len(restarts))]
        sup = Supervisor(
            [probe.spec(id, restart=r) for id, r in zip(ids, restarts, strict=True)],
            strategy=strategy,
            max_restarts=1000,
        )
        task = await running(sup)
        for index, crashed in events:
            if index not in model.running:
                continue
            child = next(c for c in sup.which_children() if c.id == ids[index])
            if crashed:
                probe.crash(ids[index], RuntimeError("boom"))
            else:
                probe.exit(ids[index])
            await settle(sup, child)
            model.end(index, crashed)
            assert [probe.starts(id) for id in ids] == model.starts
            assert [c.id for c in sup.which_children()] == [ids[i] for i in model.present]
            running_ids = {c.id for c in sup.which_children() if c.state is ChildState.RUNNING}
            assert running_ids == {ids[i] for i in model.running}
        await sup.stop()
        await task

    asyncio.run(scenario())


@pytest.mark.parametrize("restart", [Restart.TRANSIENT, Restart.PERMANENT])
async def test_child_supervisor_exceeding_intensity_exits_with_shutdown(restart: Restart) -> None:
    """A child supervisor that gives up exits with OTP's `shutdown`: as a transient child it
    stays stopped and its parent carries on; as a permanent child it is restarted."""
    probe = Probe()
    middle = Supervisor([probe.spec("leaf")], max_restarts=0, name="middle", clock=FakeClock())
    root = Supervisor([middle.child_spec(restart=restart)], name="root", clock=FakeClock())
    task = await running(root)
    (middle_child,) = root.which_children()
    probe.crash("leaf", RuntimeError("leaf broke"))
    await settle(root, middle_child)
    restarted = restart is Restart.PERMANENT
    assert probe.starts("leaf") == 1 + restarted
    assert middle_child.state is (ChildState.RUNNING if restarted else ChildState.STOPPED)
    assert root.recent_restarts() == int(restarted)
    assert root.state is ChildState.RUNNING
    await root.stop()
    await task


async def test_init_returning_ignore_keeps_the_spec_and_starts_the_rest() -> None:
    """A child raising Ignore at start is kept as `ignored` (a temporary one is dropped), the
    children after it start, and restart_child can try it again."""
    probe = Probe()
    tries = 0

    async def declines_once(started: Started) -> None:
        nonlocal tries
        tries += 1
        if tries == 1:
            raise Ignore("not needed yet")
        started()
        await asyncio.Event().wait()

    async def declines(started: Started) -> None:
        raise Ignore("never needed")

    sup = Supervisor(
        [
            probe.spec("a"),
            ChildSpec("later", declines_once),
            ChildSpec("once", declines, restart=Restart.TEMPORARY),
            probe.spec("c"),
        ]
    )
    task = await running(sup)
    assert [(c.id, c.state) for c in sup.which_children()] == [
        ("a", ChildState.RUNNING),
        ("later", ChildState.IGNORED),
        ("c", ChildState.RUNNING),
    ]
    assert sup.count_children() == {"specs": 3, "active": 2, "supervisors": 0, "workers": 3}
    later = await sup.restart_child("later")
    assert later.state is ChildState.RUNNING
    await sup.stop()
    await task


async def test_start_child_appends_a_running_child_and_refuses_a_taken_id() -> None:
    """start_child adds the child after the others; an id in use is OTP's already_started
    while it runs and already_present once it is stopped."""
    probe = Probe()
    sup = Supervisor([probe.spec("a")])
    task = await running(sup)
    b = await sup.start_child(probe.spec("b"))
    assert b.state is ChildState.RUNNING
    assert [c.id for c in sup.which_children()] == ["a", "b"]
    with pytest.raises(AlreadyStarted) as started:
        await sup.start_child(probe.spec("b"))
    assert started.value.child is b
    await sup.terminate_child("b")
    with pytest.raises(AlreadyPresent) as present:
        await sup.start_child(probe.spec("b"))
    assert present.value.child is b
    assert probe.starts("b") == 1
    await sup.start_child(probe.spec("c"))
    await sup.stop()
    await task
    assert probe.log[-2:] == ["stop:c", "stop:a"]


async def test_failed_start_child_keeps_nothing() -> None:
    """A child added with start_child that fails to come up raises StartError and is dropped."""

    async def broken(started: Started) -> None:
        raise ConnectionError("no route")

    sup = Supervisor([])
    task = await running(sup)
    with pytest.raises(StartError) as caught:
        await sup.start_child(ChildSpec("broken", broken))
    assert isinstance(caught.value.reason, ConnectionError)
    assert sup.which_children() == []
    await sup.stop()
    await task


async def test_terminate_child_keeps_the_spec_until_deleted() -> None:
    """terminate_child stops the child and keeps it for restart_child; delete_child forgets it;
    a temporary child is forgotten at once."""
    registry = Registry()
    probe = Probe()
    sup = Supervisor(
        [probe.spec("a", name=(registry, "A")), probe.spec("t", restart=Restart.TEMPORARY)]
    )
    task = await running(sup)
    a = sup.which_children()[0]
    await sup.terminate_child("a")
    states = [a.state]
    assert registry.lookup("A") is None
    await sup.terminate_child("t")
    assert [c.id for c in sup.which_children()] == ["a"]
    assert await sup.restart_child("a") is a
    states.append(a.state)
    assert states == [ChildState.STOPPED, ChildState.RUNNING]
    assert registry.lookup("A") is a
    await sup.terminate_child("a")
    await sup.delete_child("a")
    assert sup.which_children() == []
    assert probe.log == ["start:a", "start:t", "stop:a", "stop:t", "start:a", "stop:a"]
    await sup.stop()
    await task


async def test_an_abandoned_child_cannot_be_restarted_until_its_task_ends() -> None:
    """A terminated child still running past its shutdown time is `running` to restart_child and
    delete_child, so no second run starts; once its task ended it restarts normally."""
    release = asyncio.Event()
    runs = 0

    async def stubborn(started: Started) -> None:
        nonlocal runs
        runs += 1
        started()
        try:
            await asyncio.Event().wait()
        finally:
            await deaf_until(release)

    sup = Supervisor([ChildSpec("stubborn", stubborn, shutdown=0.01)])
    task = await running(sup)
    (child,) = sup.which_children()
    stuck = child.task
    assert stuck is not None
    await sup.terminate_child("stubborn")
    with pytest.raises(ChildRunning, match="abandoned"):
        await sup.restart_child("stubborn")
    with pytest.raises(ChildRunning):
        await sup.delete_child("stubborn")
    assert runs == 1
    release.set()
    await asyncio.wait({stuck})
    await sup.restart_child("stubborn")
    assert runs == 2
    await sup.stop()
    await task


async def test_restart_and_delete_refuse_a_running_child() -> None:
    """restart_child and delete_child of a running child are OTP's `running` error."""
    probe = Probe()
    sup = Supervisor([probe.spec("a")])
    task = await running(sup)
    with pytest.raises(ChildRunning):
        await sup.restart_child("a")
    with pytest.raises(ChildRunning):
        await sup.delete_child("a")
    assert probe.starts("a") == 1
    await sup.stop()
    await task


@pytest.mark.parametrize("call", ["terminate_child", "restart_child", "delete_child"])
async def test_unknown_id_is_not_found(call: str) -> None:
    """terminate, restart and delete of an id the supervisor does not know are `not_found`."""
    sup = Supervisor([])
    task = await running(sup)
    with pytest.raises(ChildNotFound):
        await getattr(sup, call)("nobody")
    await sup.stop()
    await task


async def test_a_child_awaiting_a_retried_restart_is_restarting() -> None:
    """While a failed restart waits to be retried, restart_child and delete_child are OTP's
    `restarting` error, and the retry still happens."""
    gate = asyncio.Event()
    runs = 0

    async def flaky(started: Started) -> None:
        nonlocal runs
        runs += 1
        if runs == 2:
            await gate.wait()
            raise ConnectionError("still down")
        started()
        if runs == 1:
            raise RuntimeError("first crash")
        await asyncio.Event().wait()

    sup = Supervisor([ChildSpec("flaky", flaky)], max_restarts=5, clock=FakeClock())
    task = await running(sup)
    (child,) = sup.which_children()
    restarting = asyncio.create_task(sup.restart_child("flaky"))
    deleting = asyncio.create_task(sup.delete_child("flaky"))
    gate.set()
    with pytest.raises(ChildRestarting):
        await restarting
    with pytest.raises(ChildRestarting):
        await deleting
    await sup.sync()
    assert runs == 3
    assert child.state is ChildState.RUNNING
    await sup.stop()
    await task


async def test_runtime_api_of_a_stopped_supervisor_fails_clearly() -> None:
    """A supervisor that is not running refuses every runtime call with SupervisorNotRunning."""
    probe = Probe()
    sup = Supervisor([probe.spec("a")])
    with pytest.raises(StartError, match="not running"):
        await sup.start_child(probe.spec("b"))
    for call in (sup.terminate_child, sup.restart_child, sup.delete_child):
        with pytest.raises(SupervisorNotRunning):
            await call("a")


async def test_runtime_call_waits_for_a_restart_in_progress() -> None:
    """A call made while the supervisor restarts a child is answered after that restart, as an
    OTP supervisor answers calls between its EXIT messages."""
    gate = asyncio.Event()
    entered = asyncio.Event()
    runs = 0

    async def slow_restart(started: Started) -> None:
        nonlocal runs
        runs += 1
        if runs == 2:
            entered.set()
            await gate.wait()
        started()
        if runs == 1:
            raise RuntimeError("crash")
        await asyncio.Event().wait()

    sup = Supervisor([ChildSpec("slow", slow_restart)])
    task = await running(sup)
    await entered.wait()
    terminating = asyncio.create_task(sup.terminate_child("slow"))
    gate.set()
    await terminating
    (child,) = sup.which_children()
    assert child.state is ChildState.STOPPED
    assert child.restarts == 1
    assert runs == 2
    await sup.stop()
    await task


class RuntimeModel:
    """OTP's bookkeeping of a static supervisor: ids in start order, which run, starts per id."""

    def __init__(self, strategy: Strategy) -> None:
        self.strategy = strategy
        self.order: list[str] = []
        self.restart: dict[str, Restart] = {}
        self.running: set[str] = set()
        self.starts: Counter[str] = Counter()

    def start_child(self, id: str, restart: Restart) -> type[Exception] | None:
        if id in self.restart:
            return AlreadyStarted if id in self.running else AlreadyPresent
        self.order.append(id)
        self.restart[id] = restart
        self._run(id)
        return None

    def terminate_child(self, id: str) -> type[Exception] | None:
        if id not in self.restart:
            return ChildNotFound
        self.running.discard(id)
        if self.restart[id] is Restart.TEMPORARY:
            self._drop(id)
        return None

    def restart_child(self, id: str) -> type[Exception] | None:
        if id not in self.restart:
            return ChildNotFound
        if id in self.running:
            return ChildRunning
        self._run(id)
        return None

    def delete_child(self, id: str) -> type[Exception] | None:
        if id not in self.restart:
            return ChildNotFound
        if id in self.running:
            return ChildRunning
        self._drop(id)
        return None

    def end(self, id: str, crashed: bool) -> None:
        """The running child `id` exited or crashed: OTP's restart by restart type, strategy."""
        self.running.discard(id)
        restart = self.restart[id]
        if not should_restart_model(restart, crashed):
            if restart is Restart.TEMPORARY:
                self._drop(id)
            return
        if self.strategy is Strategy.ONE_FOR_ONE:
            group = [id]
        elif self.strategy is Strategy.ONE_FOR_ALL:
            group = list(self.order)
        else:
            group = self.order[self.order.index(id) :]
        for sibling in reversed(group):
            self.running.discard(sibling)
            if sibling != id and self.restart[sibling] is Restart.TEMPORARY:
                self._drop(sibling)
        for member in group:
            if member in self.restart:
                self._run(member)

    def _run(self, id: str) -> None:
        self.running.add(id)
        self.starts[id] += 1

    def _drop(self, id: str) -> None:
        self.order.remove(id)
        del self.restart[id]


IDS = st.sampled_from(["a", "b", "c", "d"])


class RuntimeApiMachine(RuleBasedStateMachine):
    """A static supervisor driven through its runtime API and its children's exits, checked
    after every step against `RuntimeModel`."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.model: RuntimeModel | None = None
        self.registry = Registry()
        self.probe = Probe()
        self.sup = Supervisor([])
        self.task: asyncio.Task[None] | None = None

    def run(self, awaitable: Awaitable[T]) -> T:
        return self.loop.run_until_complete(awaitable)

    def check(self, expected: type[Exception] | None, call: Awaitable[object]) -> None:
        if expected is None:
            self.run(call)
            return
        with pytest.raises(expected) as caught:
            self.run(call)
        assert type(caught.value) is expected

    @initialize(strategy=st.sampled_from(list(Strategy)))
    def begin(self, strategy: Strategy) -> None:
        self.model = RuntimeModel(strategy)
        self.sup = Supervisor([], strategy=strategy, max_restarts=10_000, clock=FakeClock())
        self.task = self.run(running(self.sup))

    @rule(id=IDS, restart=st.sampled_from(list(Restart)))
    def start_child(self, id: str, restart: Restart) -> None:
        assert self.model is not None
        spec = self.probe.spec(id, restart=restart, name=(self.registry, id))
        self.check(self.model.start_child(id, restart), self.sup.start_child(spec))

    @rule(id=IDS)
    def terminate_child(self, id: str) -> None:
        assert self.model is not None
        self.check(self.model.terminate_child(id), self.sup.terminate_child(id))

    @rule(id=IDS)
    def restart_child(self, id: str) -> None:
        assert self.model is not None
        self.check(self.model.restart_child(id), self.sup.restart_child(id))

    @rule(id=IDS)
    def delete_child(self, id: str) -> None:
        assert self.model is not None
        self.check(self.model.delete_child(id), self.sup.delete_child(id))

    @rule(id=IDS, crashed=st.booleans())
    def child_exits(self, id: str, crashed: bool) -> None:
        assert self.model is not None
        if id not in self.model.running:
            return
        child = next(c for c in self.sup.which_children() if c.id == id)

        async def end() -> None:
            if crashed:
                self.probe.crash(id, RuntimeError("boom"))
            else:
                self.probe.exit(id)
            await settle(self.sup, child)

        self.run(end())
        self.model.end(id, crashed)

    @invariant()
    def matches_the_model(self) -> None:
        if self.model is None:
            return
        children = self.sup.which_children()
        assert [c.id for c in children] == self.model.order
        assert {c.id for c in children if c.state is ChildState.RUNNING} == self.model.running
        assert all(c.state in (ChildState.RUNNING, ChildState.STOPPED) for c in children)
        assert {id: self.probe.starts(id) for id in self.model.starts} == dict(self.model.starts)
        assert set(self.registry.names()) == self.model.running
        counts = self.sup.count_children()
        assert (counts["specs"], counts["active"]) == (len(children), len(self.model.running))

    def teardown(self) -> None:
        if self.task is not None:
            self.run(self.sup.stop())
            self.run(self.task)
        self.loop.close()


def test_start_terminate_restart_delete_in_any_order_follow_otps_rules() -> None:
    """Any sequence of runtime calls and child exits leaves the children, their states, their
    starts and their names exactly as OTP's rules say, errors included."""
    run_state_machine_as_test(
        RuntimeApiMachine,
        settings=settings(max_examples=60, stateful_step_count=30, deadline=None),
    )


async def test_a_cleanup_that_outlasts_its_shutdown_is_killed_in_otp_order(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """OTP's stop of `top` over k (brutal_kill), s (100 ms, a 400 ms cleanup) and f (1000 ms,
    a 100 ms cleanup): f stops cleanly, s is cut with `shutdown_error` `killed`, k ends
    without its awaited cleanup, then the supervisor exits; nothing of the tree runs after."""
    events: list[str] = []

    def child(id: str, cleanup: float) -> Callable[[Started], Coroutine[Any, Any, None]]:
        async def body(started: Started) -> None:
            started()
            try:
                await asyncio.Event().wait()
            finally:
                events.append(f"{id} cleaning")
                await asyncio.sleep(cleanup)
                events.append(f"{id} cleaned")

        return body

    top = Supervisor(
        [
            ChildSpec("k", child("k", 0.4), shutdown=0),
            ChildSpec("s", child("s", 0.4), shutdown=0.1),
            ChildSpec("f", child("f", 0.1), shutdown=1.0),
        ],
        strategy=Strategy.ONE_FOR_ONE,
        name="top",
    )
    task = await running(top)
    await top.stop()
    await task
    events.append("top exited")
    await asyncio.sleep(0.5)  # a cleanup still going would land after "top exited"
    assert events == [
        "f cleaning",
        "f cleaned",
        "s cleaning",
        "k cleaning",
        "top exited",
    ]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("shutdown_error" in m and "child s" in m and "killed" in m for m in errors)
    assert not any("child k" in m or "child f" in m for m in errors)


async def test_a_supervisors_stop_names_the_children_it_abandoned(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Stop returns once every child ended or was abandoned, and says which were abandoned."""
    release = asyncio.Event()

    async def deaf(started: Started) -> None:
        started()
        try:
            await asyncio.Event().wait()
        finally:
            await deaf_until(release)

    probe = Probe()
    sup = Supervisor([probe.spec("a"), ChildSpec("deaf", deaf, shutdown=0.01)], name="top")
    task = await running(sup)
    stuck = sup.which_children()[1].task
    assert stuck is not None
    await sup.stop()
    await task
    assert "stop:a" in probe.log
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(m.startswith("top: stopped, abandoning deaf") for m in errors)
    release.set()
    await asyncio.wait({stuck})
