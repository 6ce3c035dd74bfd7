"""Supervisor: start order, strategy x restart type, intensity, escalation and nesting."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.otp import (
    ChildSpec,
    ChildState,
    DynamicSupervisor,
    Registry,
    Restart,
    Started,
    StartError,
    Strategy,
    Supervisor,
    SupervisorFailed,
)
from tests.otp.probes import FakeClock, Probe, running, settle


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
            await release.wait()

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
