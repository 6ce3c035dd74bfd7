"""The lease rules: fair shares, self-fencing, and a model of a group of instances in which
no two instances ever stream a symbol at once unless its owner handed it over."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from streamer.ownership.rules import (
    Holdings,
    InvalidLeaseTimes,
    Lease,
    LeaseTimes,
    claimable,
    fair_share,
    plan,
)

TIMES = LeaseTimes(ttl=3.0, renew=0.5)
SYMBOLS = [f"S{n}USDT" for n in range(7)]
MAX_DRIFT = 0.01
"""Instance clocks may run 1 % fast or slow against the database's; far more than real ones."""


def test_fair_share_leaves_no_instance_more_than_one_above_an_even_share() -> None:
    """30 symbols over 3 instances is 10 each; 31 over 3 allows 11, never 12."""
    assert fair_share(30, 3) == 10
    assert fair_share(31, 3) == 11
    assert fair_share(5, 0) == 5


def test_plan_claims_up_to_the_share_and_offers_the_excess() -> None:
    """An instance above its share offers the excess; a draining one offers everything."""
    assert plan(held=15, enabled=30, live=3) == replace(plan(0, 0, 1), claim=0, release=5)
    assert plan(held=4, enabled=30, live=3).claim == 6
    assert plan(held=4, enabled=30, live=3, draining=True).release == 4


def test_lease_times_refuse_a_renew_interval_that_leaves_no_retry() -> None:
    """A renew interval longer than half the time before fencing is refused, naming both."""
    with pytest.raises(InvalidLeaseTimes, match="renew interval 2 s is too long for ttl 3 s"):
        LeaseTimes(ttl=3.0, renew=2.0)


def test_holdings_fence_from_the_send_time_of_the_last_successful_renew() -> None:
    """Leases are trusted until ttl minus margin after the renew was sent, never after."""
    now = [100.0]
    holdings = Holdings(TIMES, lambda: now[0])
    sent = holdings.renewing()
    now[0] += 1.5
    holdings.renewed(sent, {"ETHUSDT": 4})
    assert holdings.owned() == {"ETHUSDT": 4}
    now[0] = sent + TIMES.ttl - TIMES.margin - 0.01
    assert holdings.owned() == {"ETHUSDT": 4}
    now[0] = sent + TIMES.ttl - TIMES.margin
    assert holdings.owned() == {}


def test_claimable_leases_are_free_expired_or_offered() -> None:
    """A live owner's lease is taken only when it offers it."""
    assert claimable(Lease(None, 0, None), "b", now=10.0)
    assert claimable(Lease("a", 3, expires_at=10.0), "b", now=10.0)
    assert not claimable(Lease("a", 3, expires_at=10.5), "b", now=10.0)
    assert claimable(Lease("a", 3, expires_at=10.5, releasing=True), "b", now=10.0)
    assert not claimable(Lease("b", 3, expires_at=1.0), "b", now=10.0)


@dataclass
class Instance:
    """One instance of the model: its clock runs at `1 + drift` from `offset`."""

    name: str
    offset: float
    drift: float
    now: list[float]
    holdings: Holdings = field(init=False)
    partitioned: bool = False
    draining: bool = False

    def __post_init__(self) -> None:
        self.holdings = Holdings(TIMES, self.clock)

    def clock(self) -> float:
        return self.offset + self.now[0] * (1 + self.drift)


class Group(RuleBasedStateMachine):
    """Instances join, renew, claim, rebalance, drain, crash and lose the database at random;
    the database is a table of leases judged on its own clock, as the SQL does."""

    def __init__(self) -> None:
        super().__init__()
        self.now = [0.0]
        self.leases = {symbol: Lease(None, 0, None) for symbol in SYMBOLS}
        self.last_seen: dict[str, float] = {}
        self.instances: dict[str, Instance] = {}
        self.handed: set[tuple[str, int]] = set()
        self.epochs: dict[tuple[str, int], str] = {}
        self.serial = 0
        self.draining: set[str] = set()

    @rule(
        offset=st.floats(-1e6, 1e6),
        drift=st.floats(-MAX_DRIFT, MAX_DRIFT),
    )
    @precondition(lambda self: len(self.instances) < 4)
    def join(self, offset: float, drift: float) -> None:
        self.serial += 1
        name = f"i{self.serial}"
        self.instances[name] = Instance(name, offset, drift, self.now)

    @rule(data=st.data(), there=st.floats(0, 0.5), back=st.floats(0, 4.0))
    @precondition(lambda self: bool(self.instances))
    def round(self, data: st.DataObject, there: float, back: float) -> None:
        """A renew round: sent, executed `there` seconds later, answered `back` seconds after."""
        instance = self.instances[data.draw(st.sampled_from(sorted(self.instances)))]
        sent = instance.holdings.renewing()
        self.now[0] += there
        if instance.partitioned:
            self.now[0] += back
            return
        held = self._execute(instance.name, draining=instance.draining)
        self.now[0] += back
        instance.holdings.renewed(sent, held)

    def _execute(self, me: str, *, draining: bool) -> dict[str, int]:
        """The round's transaction at database time `now`."""
        now = self.now[0]
        self.last_seen[me] = now
        held: dict[str, int] = {}
        for symbol, lease in self.leases.items():
            if lease.owner == me:
                self.leases[symbol] = replace(lease, expires_at=now + TIMES.ttl)
                held[symbol] = lease.epoch
        if draining:
            self.draining.add(me)
        live = sum(
            1
            for name, seen in self.last_seen.items()
            if seen > now - TIMES.ttl and name not in self.draining
        )
        wanted = plan(len(held), len(SYMBOLS), live, draining=draining)
        for symbol in sorted(held)[: wanted.release]:
            self.leases[symbol] = replace(self.leases[symbol], releasing=True)
        for symbol in sorted(held)[wanted.release :]:
            self.leases[symbol] = replace(self.leases[symbol], releasing=False)
        taken = 0
        for symbol, lease in sorted(self.leases.items()):
            if taken == wanted.claim:
                break
            if not claimable(lease, me, now):
                continue
            if lease.releasing:
                self.handed.add((symbol, lease.epoch))
            epoch = lease.epoch + 1
            self.leases[symbol] = Lease(me, epoch, now + TIMES.ttl)
            assert (symbol, epoch) not in self.epochs
            self.epochs[(symbol, epoch)] = me
            held[symbol] = epoch
            taken += 1
        return held

    @rule(dt=st.floats(0.01, 2.0))
    def wait(self, dt: float) -> None:
        self.now[0] += dt

    @rule(data=st.data())
    @precondition(lambda self: bool(self.instances))
    def crash(self, data: st.DataObject) -> None:
        """kill -9: the process and its streams are gone; its leases stay until they expire."""
        del self.instances[data.draw(st.sampled_from(sorted(self.instances)))]

    @rule(data=st.data())
    @precondition(lambda self: bool(self.instances))
    def cut(self, data: st.DataObject) -> None:
        instance = self.instances[data.draw(st.sampled_from(sorted(self.instances)))]
        instance.partitioned = not instance.partitioned

    @rule(data=st.data())
    @precondition(lambda self: bool(self.instances))
    def drain(self, data: st.DataObject) -> None:
        """SIGTERM: the instance offers everything in its next rounds."""
        self.instances[data.draw(st.sampled_from(sorted(self.instances)))].draining = True

    @invariant()
    def one_streamer_per_symbol_unless_handed_over(self) -> None:
        """Whoever believes it owns a symbol holds the current epoch, or held an earlier one
        that its owner offered and another took (make before break); epochs never repeat."""
        for symbol, lease in self.leases.items():
            believers = [
                (name, epochs[symbol])
                for name, instance in self.instances.items()
                if symbol in (epochs := instance.holdings.owned())
            ]
            assert len({epoch for _, epoch in believers}) == len(believers), believers
            for name, epoch in believers:
                assert self.epochs[(symbol, epoch)] == name
                if epoch != lease.epoch:
                    assert (symbol, epoch) in self.handed, (symbol, name, epoch, lease)
                else:
                    assert lease.owner == name


TestGroup = Group.TestCase
TestGroup.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
