"""One instance's part in the group: renew and claim leases, and run exactly what it owns.

A supervised child runs two loops. The round loop renews, saves positions and claims in one
transaction every `renew` seconds, or at once when another instance NOTIFYs a change; after
each round it brings the running set in line with the leases held. The listen loop turns NOTIFY
into a wake-up.

A database that does not answer stops nothing: the instance keeps streaming what it owns and
says so (`database_outage`), because every sink drops duplicates by trade id, so a symbol that
another instance takes over meanwhile is only streamed twice, while a stopped one would lose
trades. The first round that reaches the database again saves the positions (at the epoch the
instance still holds) and stops exactly the symbols whose lease another instance took.

A lease this instance offered (rebalance, or all of them on SIGTERM) and lost keeps streaming
until its new owner reports it streams, at most one ttl: make before break. On SIGTERM the child
drains: it offers everything, waits (bounded) for the others to take over, then leaves; during
a database outage it cannot hand over and leaves at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from streamer.db.errors import DatabaseError
from streamer.otp import ChildSpec, Registry, Started
from streamer.ownership.rules import DatabaseOutage, Holdings, LeaseTimes
from streamer.ownership.store import InstanceInfo, LeaseStore, Report
from streamer.stream.hub import StreamHub
from streamer.stream.stats import LiveState

if TYPE_CHECKING:
    from streamer.service.streaming import Streaming

log = logging.getLogger(__name__)

COALESCE = 0.05
"""Seconds to gather a burst of notifications into one round."""


@dataclass(slots=True)
class LeaseStats:
    """Counters for metrics: leases taken from another owner, renew rounds and their latency,
    and rounds that did not reach the database (each one streamed on from memory)."""

    takeovers: int = 0
    renewals: int = 0
    failures: int = 0
    renew_seconds_total: float = 0.0
    last_renew_seconds: float = 0.0


class Ownership:
    """Leases of this instance (`store.me`) and the reconciliation that follows them."""

    def __init__(
        self,
        *,
        store: LeaseStore,
        streaming: Streaming,
        hub: StreamHub,
        registry: Registry,
        address: Callable[[], str],
        positions: Callable[[], Mapping[str, int]],
        wait_ready: Callable[[], Awaitable[object]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.times: LeaseTimes = store.times
        self.holdings = Holdings()
        self.stats = LeaseStats()
        self.database_outage: DatabaseOutage | None = None
        """Set while this instance's rounds do not reach the database (it streams on from
        memory meanwhile); None while they do. For health and the status page."""
        self._streaming = streaming
        self._hub = hub
        self._registry = registry
        self._address = address
        self._positions = positions
        self._wait_ready = wait_ready
        self._clock = clock
        self._handing: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._draining = False
        self._offered: frozenset[str] = frozenset()
        self._round_lock = asyncio.Lock()
        self._first_round = asyncio.Event()
        self._live = 1

    @property
    def me(self) -> str:
        return self.store.me

    async def owned(self) -> list[str]:
        """The symbols this instance owns, once its first round has claimed its share: what
        autostart starts (and, from then on, what every round's reconciliation keeps running)."""
        await self._first_round.wait()
        return sorted(self.holdings.owned())

    async def announce(self) -> None:
        """Tell every instance that settings changed, this one first: it runs a round now, so
        a symbol it can take is streaming (and one it stopped is released) when this returns."""
        await self.store.announce()
        await self._round()

    async def owner(self, symbol: str) -> str | None:
        return (await self.store.owners()).get(symbol)

    async def owners(self) -> dict[str, str]:
        return await self.store.owners()

    async def instances(self) -> list[InstanceInfo]:
        """The live instances; this one with its running set as of now."""
        found = await self.store.instances()
        return [
            InstanceInfo(i.id, i.address, i.started, i.last_seen, sorted(self._registry.names()))
            if i.id == self.me
            else i
            for i in found
        ]

    def child_spec(self) -> ChildSpec:
        """Its shutdown allows the drain: offered leases must find a new owner first."""
        return ChildSpec(id="ownership", start=self._run, shutdown=self.times.ttl * 3 + 5)

    async def _run(self, started: Started) -> None:
        started()
        await self._wait_ready()
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._rounds())
                group.create_task(self._listen())
        except asyncio.CancelledError:
            await self._drain()
            raise

    # --- loops --------------------------------------------------------------------------------

    async def _rounds(self) -> None:
        while True:
            await self._round()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.times.renew)
            await asyncio.sleep(COALESCE)
            self._wake.clear()

    async def _listen(self) -> None:
        while True:
            try:
                await self.store.listen(self._wake.set)
            except DatabaseError as error:
                log.debug("Listening for other instances failed: %s", error)
            await asyncio.sleep(self.times.renew)

    # --- one round ----------------------------------------------------------------------------

    async def _round(self) -> None:
        """One round at a time: the loop's, and those run for a start or a stop."""
        async with self._round_lock:
            await self._round_now()

    async def _round_now(self) -> None:
        sent = self._clock()
        before = self.holdings.owned()
        report = Report(
            address=self._address(),
            running=self._registry.names(),
            streaming=[s for s in before if self._streams(s)],
            positions=self._positions(),
            handing=sorted(self._handing),
            draining=self._draining,
        )
        try:
            async with asyncio.timeout(self.times.ttl - self.times.margin):
                result = await self.store.round(report)
        except (DatabaseError, TimeoutError) as error:
            self._unreachable(str(error) or "timed out")
            await self._reconcile()
            self.stats.failures += 1
            return
        latency = self._clock() - sent
        self.stats.renewals += 1
        self.stats.renew_seconds_total += latency
        self.stats.last_renew_seconds = latency
        self.stats.takeovers += result.takeovers
        lost = self.holdings.renewed(result.held)
        self._live = result.live
        for symbol, position in result.claimed.items():
            if position is None:
                self._hub.forget(symbol)
            else:
                self._hub.resume_from(symbol, position)
        if result.claimed:
            log.info("Claimed %d symbol(s): %s", len(result.claimed), _few(result.claimed))
        for symbol in lost.keys() & self._offered:
            self._handing[symbol] = self._clock() + self.times.ttl
        taken = sorted(lost.keys() - self._offered)
        self._offered = result.offered
        for symbol in result.handed_over:
            self._handing.pop(symbol, None)
        if self._first_round.is_set():
            await self._reconcile()
        else:
            self._first_round.set()
        if self.database_outage is not None:
            self._reachable_again(self.database_outage, len(result.held), taken)

    def _unreachable(self, reason: str) -> None:
        if self.database_outage is None:
            log.warning(
                "The database does not answer (%s): streaming goes on for the %d symbol(s) this "
                "instance owns, their positions are saved when it answers again; meanwhile "
                "another instance may stream them too (the sinks drop the overlap by trade id)",
                reason,
                len(self.holdings.owned()),
            )
            self.database_outage = DatabaseOutage(since=time.time(), reason=reason)
        else:
            log.debug("The database still does not answer: %s", reason)
            self.database_outage = replace(self.database_outage, reason=reason)

    def _reachable_again(self, outage: DatabaseOutage, held: int, taken: list[str]) -> None:
        """Reported once the round that ended it has stopped what was taken, so whoever sees
        `database_outage` cleared sees the running set that follows the database again."""
        log.info(
            "The database answers again after %.1f s: %d symbol(s) still owned, positions saved; "
            "%s",
            max(time.time() - outage.since, 0.0),
            held,
            f"stopped {len(taken)} another instance took meanwhile: {_few(taken)}"
            if taken
            else "none was taken by another instance",
        )
        self.database_outage = None

    def _streams(self, symbol: str) -> bool:
        stats = self._hub.stats(symbol)
        return stats is not None and stats.state is LiveState.STREAMING

    async def _reconcile(self) -> None:
        """Run exactly the owned symbols, plus those still being handed over (at most a ttl)."""
        now = self._clock()
        for symbol, deadline in list(self._handing.items()):
            if deadline <= now:
                del self._handing[symbol]
        await self._streaming.reconcile(set(self.holdings.owned()), keep=set(self._handing))

    async def _drain(self) -> None:
        """Offer every lease, keep streaming until the others took them over, then leave.

        Alone in the group there is nobody to hand over to: it leaves at once. Without the
        database nobody can take over either: it leaves at once and says so; the others claim
        its leases once they expire and resume from the positions saved last."""
        self._draining = True
        deadline = self._clock() + self.times.ttl * 2
        try:
            while self.database_outage is None and self._clock() < deadline:
                await self._round()
                if self._live == 0 or (not self.holdings.owned() and not self._handing):
                    break
                await asyncio.sleep(self.times.renew / 4)
            if self.database_outage is not None:
                log.warning(
                    "Stopping without a hand-over: the database does not answer (%s); other "
                    "instances resume %d symbol(s) from their last saved positions once the "
                    "leases expire",
                    self.database_outage.reason,
                    len(self.holdings.owned()),
                )
            else:
                await self._save_final()
                await self.store.leave()
        except DatabaseError as error:
            log.warning("Could not hand over every symbol before stopping: %s", error)
        self.holdings.drop()
        self._handing.clear()

    async def _save_final(self) -> None:
        owned = self.holdings.owned()
        if owned:
            await self.store.save_positions(owned, self._positions())


def _few(symbols: Iterable[str]) -> str:
    names = sorted(symbols)
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
