"""The lease rules of several instances on one database, apart from any I/O.

Lease expiry is judged on the database's clock (`now()` in the statement that renews or
claims), so instance clocks may be set to anything. What an instance believes it owns changes
only when the database answers: a round that fails changes nothing, so an instance that loses
the database keeps streaming what it owns. Every sink drops duplicates by trade id, so a symbol
streamed twice for a while (its lease expired and another instance took it) costs nothing
downstream, while a symbol nobody streams loses trades. The instance gives a symbol up at its
first round that finds the lease gone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from streamer.errors import StreamerError


class InvalidLeaseTimes(StreamerError, ValueError):
    """Lease times that let a lease expire between renews: the interval must leave a retry."""


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
                "the lease could expire)"
            )

    @property
    def margin(self) -> float:
        """How long before its lease expires a renew must have landed: a round that takes
        longer is given up, so a slow database never lets a healthy owner's lease lapse."""
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
    """The leases one instance believes it holds: what the last round that reached the
    database said, kept through any outage.

    A failed round leaves them as they are, so the streams go on; `renewed(epochs)` replaces
    them with the database's answer and tells which ones another instance took meanwhile.
    """

    def __init__(self) -> None:
        self._epochs: dict[str, int] = {}

    def renewed(self, epochs: Mapping[str, int]) -> dict[str, int]:
        """Record what the database answered; returns the leases held before and not now.

        A lease held again at a new epoch is not among them: this round claimed it back, so it
        is this instance's again and its stream goes on.
        """
        lost = {s: e for s, e in self._epochs.items() if s not in epochs}
        self._epochs = dict(epochs)
        return lost

    def owned(self) -> dict[str, int]:
        """Symbol -> epoch of every lease this instance streams as owner."""
        return dict(self._epochs)

    def drop(self) -> None:
        """Forget every lease at once (the instance released them or leaves without a hand-over)."""
        self._epochs = {}


@dataclass(frozen=True, slots=True)
class DatabaseOutage:
    """The database has not answered this instance's rounds since `since` (seconds since the
    Unix epoch, for people to read), the last failure being `reason`. Meanwhile the instance
    streams what it owned from memory and saves the positions once the database answers; the
    leases may expire and another instance may stream the same symbols too."""

    since: float
    reason: str
