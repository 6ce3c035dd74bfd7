"""The lease rules of several instances on one database, apart from any I/O.

Time comes in two kinds and they never mix. Lease expiry is judged on the database's clock
(`now()` in the statement that renews or claims), so instance clocks may be set to anything.
Self-fencing is judged on the instance's own monotonic clock, measured from the moment it sent
its last successful renew: the database stamped that renew no earlier, so the lease cannot
expire before `sent + ttl` and the instance stops streaming at `sent + ttl - margin`. The only
clock property this needs is that a monotonic clock does not run slower than the database's by
more than `margin / ttl` (a third: real clocks differ by parts per million).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from streamer.errors import StreamerError


class InvalidLeaseTimes(StreamerError, ValueError):
    """Lease times that could not fence in time: the renew interval must leave room to retry."""


@dataclass(frozen=True, slots=True)
class LeaseTimes:
    """`ttl`: how long a renewed lease lasts; `renew`: how often its owner renews it."""

    ttl: float = 6.0
    renew: float = 1.0

    def __post_init__(self) -> None:
        if self.ttl <= 0 or self.renew <= 0:
            raise InvalidLeaseTimes("lease ttl and renew interval must be positive seconds")
        if self.renew * 2 > self.ttl - self.margin:
            raise InvalidLeaseTimes(
                f"lease renew interval {self.renew:g} s is too long for ttl {self.ttl:g} s: "
                f"it must be at most {(self.ttl - self.margin) / 2:g} s (two tries before "
                "the instance fences itself)"
            )

    @property
    def margin(self) -> float:
        """How long before its lease can expire an instance that could not renew stops."""
        return self.ttl / 3


@dataclass(frozen=True, slots=True)
class Lease:
    """One symbol's lease as the database holds it; `expires_at` on the database's clock."""

    owner: str | None
    epoch: int
    expires_at: float | None
    releasing: bool = False


def claimable(lease: Lease, me: str, now: float) -> bool:
    """Whether `me` may take `lease` at database time `now`: free, expired, or offered.

    An offered (`releasing`) lease is one its live owner hands over: it keeps streaming until
    the new owner streams, so taking it early is the make-before-break of a planned move.
    """
    if lease.owner == me:
        return False
    return (
        lease.owner is None
        or lease.expires_at is None
        or lease.expires_at <= now
        or (lease.releasing)
    )


def fair_share(enabled: int, live: int) -> int:
    """The most symbols one of `live` instances should hold: at most one above an even share.

    Unweighted: every symbol counts as one, whatever its trade rate.
    """
    return math.ceil(enabled / live) if live > 0 else enabled


@dataclass(frozen=True, slots=True)
class Plan:
    """What one renew round does beyond renewing: claim this many, offer this many."""

    claim: int
    release: int


def plan(held: int, enabled: int, live: int, *, draining: bool = False) -> Plan:
    """Move towards the fair share: claim up to it, offer what is above it.

    A draining instance (SIGTERM) counts for nothing and offers everything it holds.
    """
    share = 0 if draining else fair_share(enabled, live)
    return Plan(claim=max(0, share - held), release=max(0, held - share))


class Holdings:
    """The leases one instance believes it holds, valid only until its self-fencing deadline.

    `renewing()` is read just before a renew is sent; `renewed(sent, epochs)` records what the
    database answered. Once `ttl - margin` has passed since the last successful send without
    another success, `owned()` is empty: the instance must stop every stream it owned.
    """

    def __init__(self, times: LeaseTimes, clock: Callable[[], float] = time.monotonic) -> None:
        self.times = times
        self.clock = clock
        self._epochs: dict[str, int] = {}
        self._valid_until = -math.inf

    def renewing(self) -> float:
        return self.clock()

    def renewed(self, sent: float, epochs: Mapping[str, int]) -> None:
        self._epochs = dict(epochs)
        self._valid_until = sent + self.times.ttl - self.times.margin

    @property
    def valid_until(self) -> float:
        """The local monotonic time at which the held leases must be given up."""
        return self._valid_until

    def fenced(self) -> bool:
        return self.clock() >= self._valid_until

    def owned(self) -> dict[str, int]:
        """Symbol -> epoch of every lease still safely held; empty once fenced."""
        return {} if self.fenced() else dict(self._epochs)

    def drop(self) -> None:
        """Forget every lease at once (the instance released them or lost the database)."""
        self._epochs = {}
