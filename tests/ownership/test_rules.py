"""The lease rules: fair shares, leases kept through a database outage, and a model of a group
of instances in which no two instances stream a symbol at once unless its owner handed it over
or one of them has not reached the database since the other took it."""

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
    """A renew interval that leaves no retry before the lease could expire is refused, naming
    both."""
    with pytest.raises(InvalidLeaseTimes, match="renew interval 2 s is too long for ttl 3 s"):
        LeaseTimes(ttl=3.0, renew=2.0)


def test_holdings_change_only_with_an_answer_of_the_database() -> None:
    """What an instance owns is the last answer it got, however long ago; the next answer gives
    up exactly the leases it no longer lists, and a lease claimed back at a new epoch stays."""
    holdings = Holdings()
    assert holdings.renewed({"ETHUSDT": 4, "BTCUSDT": 2, "NEOUSDT": 7}) == {}
    assert holdings.owned() == {"ETHUSDT": 4, "BTCUSDT": 2, "NEOUSDT": 7}
    lost = holdings.renewed({"ETHUSDT": 4, "NEOUSDT": 9})
    assert lost == {"BTCUSDT": 2}
    assert holdings.owned() == {"ETHUSDT": 4, "NEOUSDT": 9}


def test_claimable_leases_are_free_expired_or_offered() -> None:
    """A live owner's lease is taken only when it offers it."""
    assert claimable(Lease(None, 0, None), "b", now=10.0)
    assert claimable(Lease("a", 3, expires_at=10.0), "b", now=10.0)
    assert not claimable(Lease("a", 3, expires_at=10.5), "b", now=10.0)
    assert claimable(Lease("a", 3, expires_at=10.5, releasing=True), "b", now=10.0)
    assert not claimable(Lease("b", 3, expires_at=1.0), "b", now=10.0)


@dataclass
class Instance:
    """One instance of the model; `reached`: the step of its last round the database ran."""

    name: str
    holdings: Holdings = field(default_factory=Holdings)
    partitioned: bool = False
    draining: bool = False
    reached: int = -1


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
        self.claimed_at: dict[tuple[str, int], int] = {}
        self.serial = 0
        self.step = 0
        self.draining: set[str] = set()

    @rule()
    @precondition(lambda self: len(self.instances) < 4)
    def join(self) -> None:
        self.serial += 1
        name = f"i{self.serial}"
        self.instances[name] = Instance(name)

    @rule(data=st.data(), there=st.floats(0, 0.5), back=st.floats(0, 4.0))
    @precondition(lambda self: bool(self.instances))
    def round(self, data: st.DataObject, there: float, back: float) -> None:
        """A renew round: sent, executed `there` seconds later, answered `back` seconds after;
        a partitioned instance's round fails and changes nothing it believes."""
        instance = self.instances[data.draw(st.sampled_from(sorted(self.instances)))]
        self.now[0] += there
        if instance.partitioned:
            self.now[0] += back
            return
        self.step += 1
        instance.reached = self.step
        held = self._execute(instance.name, draining=instance.draining)
        self.now[0] += back
        instance.holdings.renewed(held)

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
            self.claimed_at[(symbol, epoch)] = self.step
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
    def one_streamer_per_symbol_unless_handed_over_or_unseen(self) -> None:
        """Whoever believes it owns a symbol holds the current epoch, or held an earlier one
        that it offered and another took (make before break), or has not reached the database
        since the next epoch was claimed (an outage: the overlap the sinks drop by trade id);
        epochs never repeat."""
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
                    unseen = self.claimed_at[(symbol, epoch + 1)] > self.instances[name].reached
                    assert (symbol, epoch) in self.handed or unseen, (symbol, name, epoch, lease)
                else:
                    assert lease.owner == name


TestGroup = Group.TestCase
TestGroup.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
