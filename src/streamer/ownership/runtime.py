"""One instance's part in the group: renew and claim leases, and run exactly what it owns.

A supervised child runs three loops. The round loop renews, saves positions and claims in one
transaction every `renew` seconds, or at once when another instance NOTIFYs a change; after
each round it brings the running set in line with the leases held. The listen loop turns NOTIFY
into a wake-up. The fence loop watches the self-fencing deadline on the local monotonic clock
and stops every stream the moment the leases could no longer be trusted, even while a round
is stuck on a database that does not answer.

A lease this instance offered (rebalance, or all of them on SIGTERM) and lost keeps streaming
until its new owner reports it streams, at most one ttl: make before break. On SIGTERM the child
drains: it offers everything, waits (bounded) for the others to take over, then leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from streamer.db.errors import DatabaseError
from streamer.otp import ChildSpec, Registry, Started
from streamer.ownership.rules import Holdings, LeaseTimes
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
    """Counters for metrics: leases taken from another owner, renew rounds and their latency."""

    takeovers: int = 0
    renewals: int = 0
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
        self.holdings = Holdings(self.times, clock)
        self.stats = LeaseStats()
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
        self._reachable = True
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
                group.create_task(self._fence())
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

    async def _fence(self) -> None:
        """Stop everything owned once the fencing deadline passes without a renew."""
        while True:
            remaining = self.holdings.valid_until - self._clock()
            if remaining > 0:
                await asyncio.sleep(min(remaining, self.times.renew))
                continue
            if len(self._registry):
                await self._reconcile()
            await asyncio.sleep(self.times.renew / 4)

    # --- one round ----------------------------------------------------------------------------

    async def _round(self) -> None:
        """One round at a time: the loop's, and those run for a start or a stop."""
        async with self._round_lock:
            await self._round_now()

    async def _round_now(self) -> None:
        sent = self.holdings.renewing()
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
            if self._reachable:
                log.warning(
                    "Could not renew leases (%s); streams stop %.1f s after the last renew",
                    error or "timed out",
                    self.times.ttl - self.times.margin,
                )
                self._reachable = False
            await self._reconcile()
            return
        latency = self._clock() - sent
        self.stats.renewals += 1
        self.stats.renew_seconds_total += latency
        self.stats.last_renew_seconds = latency
        self.stats.takeovers += result.takeovers
        if not self._reachable:
            log.info("Leases renewed again")
            self._reachable = True
        self.holdings.renewed(sent, result.held)
        self._live = result.live
        for symbol, position in result.claimed.items():
            if position is None:
                self._hub.forget(symbol)
            else:
                self._hub.resume_from(symbol, position)
        if result.claimed:
            log.info("Claimed %d symbol(s): %s", len(result.claimed), _few(result.claimed))
        for symbol in before.keys() - result.held.keys():
            if symbol in self._offered:
                self._handing[symbol] = self._clock() + self.times.ttl
        self._offered = result.offered
        for symbol in result.handed_over:
            self._handing.pop(symbol, None)
        if not self._first_round.is_set():
            self._first_round.set()
            return
        await self._reconcile()

    def _streams(self, symbol: str) -> bool:
        stats = self._hub.stats(symbol)
        return stats is not None and stats.state is LiveState.STREAMING

    async def _reconcile(self) -> None:
        """Run exactly the owned symbols, plus those still being handed over (until fenced)."""
        now = self._clock()
        if self.holdings.fenced():
            if self._handing or len(self._registry):
                log.error(
                    "Leases not renewed in time: stopped streaming to let other instances take over"
                )
            self._handing.clear()
        for symbol, deadline in list(self._handing.items()):
            if deadline <= now:
                del self._handing[symbol]
        await self._streaming.reconcile(set(self.holdings.owned()), keep=set(self._handing))

    async def _drain(self) -> None:
        """Offer every lease, keep streaming until the others took them over, then leave.

        Alone in the group there is nobody to hand over to: it leaves at once."""
        self._draining = True
        deadline = self._clock() + self.times.ttl * 2
        try:
            while self._clock() < deadline:
                await self._round()
                if self._live == 0 or (not self.holdings.owned() and not self._handing):
                    break
                await asyncio.sleep(self.times.renew / 4)
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
