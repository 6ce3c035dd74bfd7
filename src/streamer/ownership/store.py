"""The leases in PostgreSQL: one transaction per renew round, and LISTEN/NOTIFY to wake up.

Every statement judges expiry by the database's `now()` (the start of its transaction, which
is never earlier than the moment the instance sent it), so instance clocks do not matter.
Claims lock the rows they take with `FOR UPDATE SKIP LOCKED`: instances claiming at the same
moment take different symbols instead of waiting on each other, and a row being renewed by its
owner is skipped, never stolen.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from streamer.db.engine import translate_errors
from streamer.db.errors import DatabaseUnavailable
from streamer.db.repository import utc
from streamer.ownership.rules import LeaseTimes, plan

log = logging.getLogger(__name__)

CHANNEL = "streamer_cluster"
"""The NOTIFY channel: any change another instance should act on at once."""

_TTL = "make_interval(secs => :ttl)"

_JOIN = sa.text(
    "INSERT INTO instances (id, address, started, last_seen, draining, symbols) "
    "VALUES (:me, :address, now(), now(), :draining, CAST(:symbols AS json)) "
    "ON CONFLICT (id) DO UPDATE SET address = EXCLUDED.address, last_seen = now(), "
    "draining = EXCLUDED.draining, symbols = EXCLUDED.symbols "
    "RETURNING (xmax = 0) AS joined"
)
_FORGET_DEAD = sa.text(f"DELETE FROM instances WHERE last_seen < now() - 10 * {_TTL}")
_ADD_LEASES = sa.text(
    "INSERT INTO leases (symbol) SELECT symbol FROM settings WHERE status = 'on' "
    "ON CONFLICT (symbol) DO NOTHING"
)
_FREE = "owner = NULL, expires_at = NULL, releasing = false, streaming = false"
_RELEASE_OFF = sa.text(
    f"UPDATE leases SET {_FREE} FROM settings WHERE settings.symbol = leases.symbol "
    "AND leases.owner = :me AND settings.status = 'off'"
)
_RENEW = sa.text(
    f"UPDATE leases SET expires_at = now() + {_TTL} WHERE owner = :me "
    "RETURNING symbol, epoch, releasing"
)
_SAVE_POSITION = sa.text(
    "UPDATE settings SET last_trade_id = :position FROM leases "
    "WHERE settings.symbol = :symbol AND settings.status = 'on' "
    "AND leases.symbol = settings.symbol AND leases.owner = :me AND leases.epoch = :epoch"
)
_CONFIRM_STREAMING = sa.text(
    "UPDATE leases SET streaming = true WHERE owner = :me "
    "AND symbol = ANY(CAST(:symbols AS text[])) AND NOT streaming"
)
_COUNTS = sa.text(
    f"SELECT (SELECT count(*) FROM instances WHERE last_seen > now() - {_TTL} "
    "AND NOT draining) AS live, (SELECT count(*) FROM settings WHERE status = 'on') AS enabled"
)
_OFFER = sa.text(
    "UPDATE leases SET releasing = (symbol = ANY(CAST(:offered AS text[]))) "
    "WHERE owner = :me AND releasing <> (symbol = ANY(CAST(:offered AS text[])))"
)
_CLAIMABLE = sa.text(
    "SELECT leases.symbol, leases.owner FROM leases "
    "JOIN settings ON settings.symbol = leases.symbol "
    "WHERE settings.status = 'on' AND leases.owner IS DISTINCT FROM :me "
    "AND (leases.owner IS NULL OR leases.expires_at IS NULL OR leases.expires_at <= now() "
    "OR leases.releasing) "
    "ORDER BY leases.releasing, leases.symbol LIMIT :count FOR UPDATE OF leases SKIP LOCKED"
)
_CLAIM = sa.text(
    f"UPDATE leases SET owner = :me, epoch = epoch + 1, expires_at = now() + {_TTL}, "
    "releasing = false, streaming = false WHERE symbol = ANY(CAST(:symbols AS text[])) "
    "RETURNING symbol, epoch"
)
_POSITIONS = sa.text(
    "SELECT symbol, last_trade_id FROM settings WHERE symbol = ANY(CAST(:symbols AS text[]))"
)
_PENDING_HANDOVERS = sa.text(
    "SELECT leases.symbol FROM leases JOIN settings ON settings.symbol = leases.symbol "
    "WHERE leases.symbol = ANY(CAST(:symbols AS text[])) AND settings.status = 'on' "
    "AND leases.owner IS NOT NULL AND leases.owner <> :me AND NOT leases.streaming "
    "AND leases.expires_at > now()"
)
_NOTIFY = sa.text(f"SELECT pg_notify('{CHANNEL}', :me)")
_LEAVE_LEASES = sa.text(f"UPDATE leases SET {_FREE} WHERE owner = :me")
_LEAVE = sa.text("DELETE FROM instances WHERE id = :me")
_LIVE_INSTANCES = sa.text(
    "SELECT id, address, started, last_seen, symbols FROM instances "
    f"WHERE last_seen > now() - {_TTL} ORDER BY id"
)
_OWNERS = sa.text("SELECT symbol, owner FROM leases WHERE owner IS NOT NULL AND expires_at > now()")


@dataclass(frozen=True, slots=True)
class Report:
    """What an instance tells the database in each round about itself."""

    address: str
    running: Sequence[str]
    streaming: Sequence[str]
    positions: Mapping[str, int]
    handing: Sequence[str] = ()
    draining: bool = False


@dataclass(frozen=True, slots=True)
class Round:
    """What a round left this instance with.

    `held`: symbol -> epoch of every lease it holds now; `claimed`: the ones it just took, with
    the position to resume from; `offered`: held ones it offers to others; `handed_over`: of
    the symbols it was handing over, those whose new owner streams (or that need no owner).
    """

    held: dict[str, int]
    claimed: dict[str, int | None] = field(default_factory=dict)
    takeovers: int = 0
    offered: frozenset[str] = frozenset()
    handed_over: frozenset[str] = frozenset()
    live: int = 1
    """Live instances that take symbols (a draining one counts itself out)."""


@dataclass(frozen=True, slots=True)
class InstanceInfo:
    """One live instance of the group, as it last reported itself."""

    id: str
    address: str
    started: datetime
    last_seen: datetime
    symbols: list[str]


class LeaseStore:
    """The lease table's statements for one instance (`me`)."""

    def __init__(self, engine: AsyncEngine, me: str, times: LeaseTimes) -> None:
        self._engine = engine
        self.me = me
        self.times = times

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        with translate_errors(self._engine.url):
            async with self._engine.begin() as connection:
                yield connection

    async def round(self, report: Report) -> Round:
        """Heartbeat, renew, save positions fenced by epoch, rebalance and claim: one transaction.

        Anything that changes what other instances should do (a join, an offer, a claim, a
        release) is announced with NOTIFY when the transaction commits.
        """
        me, ttl = self.me, self.times.ttl
        async with self._transaction() as connection:
            joined = (
                await connection.execute(
                    _JOIN,
                    {
                        "me": me,
                        "address": report.address,
                        "draining": report.draining,
                        "symbols": json.dumps(sorted(report.running)),
                    },
                )
            ).scalar_one()
            await connection.execute(_FORGET_DEAD, {"ttl": ttl})
            await connection.execute(_ADD_LEASES)
            released = (await connection.execute(_RELEASE_OFF, {"me": me})).rowcount
            renewed = (await connection.execute(_RENEW, {"me": me, "ttl": ttl})).all()
            held = {row.symbol: row.epoch for row in renewed}
            await self._save(connection, held, report.positions)
            confirmed = [symbol for symbol in report.streaming if symbol in held]
            if confirmed:
                await connection.execute(_CONFIRM_STREAMING, {"me": me, "symbols": confirmed})
            counts = (await connection.execute(_COUNTS, {"ttl": ttl})).one()
            wanted = plan(len(held), counts.enabled, counts.live, draining=report.draining)
            was_offered = {row.symbol for row in renewed if row.releasing}
            offered = sorted(held, key=lambda s: (s not in was_offered, s))[: wanted.release]
            moved = (await connection.execute(_OFFER, {"me": me, "offered": offered})).rowcount
            claimed, takeovers = await self._claim(connection, wanted.claim)
            held.update({symbol: epoch for symbol, (epoch, _) in claimed.items()})
            pending: set[str] = set()
            if report.handing:
                rows = await connection.execute(
                    _PENDING_HANDOVERS, {"me": me, "symbols": list(report.handing)}
                )
                pending = set(rows.scalars())
            if joined or released or moved or claimed:
                await connection.execute(_NOTIFY, {"me": me})
        return Round(
            held=held,
            claimed={symbol: position for symbol, (_, position) in claimed.items()},
            takeovers=takeovers,
            offered=frozenset(offered),
            handed_over=frozenset(set(report.handing) - pending - set(held)),
            live=counts.live,
        )

    async def _save(
        self, connection: AsyncConnection, held: Mapping[str, int], positions: Mapping[str, int]
    ) -> int:
        rows = [
            {"me": self.me, "symbol": symbol, "epoch": held[symbol], "position": position}
            for symbol, position in positions.items()
            if symbol in held
        ]
        if not rows:
            return 0
        result = await connection.execute(_SAVE_POSITION, rows)
        return max(result.rowcount, 0)

    async def _claim(
        self, connection: AsyncConnection, count: int
    ) -> tuple[dict[str, tuple[int, int | None]], int]:
        """Take up to `count` claimable leases; each new owner gets a new epoch."""
        if count <= 0:
            return {}, 0
        rows = (await connection.execute(_CLAIMABLE, {"me": self.me, "count": count})).all()
        if not rows:
            return {}, 0
        symbols = [row.symbol for row in rows]
        takeovers = sum(1 for row in rows if row.owner is not None)
        epochs = await connection.execute(
            _CLAIM, {"me": self.me, "ttl": self.times.ttl, "symbols": symbols}
        )
        found = await connection.execute(_POSITIONS, {"symbols": symbols})
        positions: dict[str, int | None] = {row.symbol: row.last_trade_id for row in found}
        claimed = {row.symbol: (row.epoch, positions.get(row.symbol)) for row in epochs}
        return claimed, takeovers

    async def save_positions(self, epochs: Mapping[str, int], positions: Mapping[str, int]) -> int:
        """Save the positions of the symbols still held at the given epochs; returns how many.

        A save by an owner whose lease has moved on matches no row: it is refused, so a stale
        owner can never move a position back under the new owner.
        """
        async with self._transaction() as connection:
            return await self._save(connection, epochs, positions)

    async def leave(self) -> None:
        """Free every lease at once and drop out of the group (a clean stop)."""
        async with self._transaction() as connection:
            await connection.execute(_LEAVE_LEASES, {"me": self.me})
            await connection.execute(_LEAVE, {"me": self.me})
            await connection.execute(_NOTIFY, {"me": self.me})

    async def announce(self) -> None:
        """Wake every instance: settings changed (a start or a stop)."""
        async with self._transaction() as connection:
            await connection.execute(_NOTIFY, {"me": self.me})

    async def instances(self) -> list[InstanceInfo]:
        async with self._transaction() as connection:
            rows = (await connection.execute(_LIVE_INSTANCES, {"ttl": self.times.ttl})).all()
        return [
            InstanceInfo(
                id=row.id,
                address=row.address,
                started=utc(row.started),
                last_seen=utc(row.last_seen),
                symbols=[str(symbol) for symbol in row.symbols],
            )
            for row in rows
        ]

    async def owners(self) -> dict[str, str]:
        """Symbol -> owner of every lease that has not expired."""
        async with self._transaction() as connection:
            rows = await connection.execute(_OWNERS)
            return {row.symbol: row.owner for row in rows}

    async def listen(self, wake: Callable[[], None]) -> None:
        """Call `wake()` on every NOTIFY until the listening connection is lost (then raises)."""
        with translate_errors(self._engine.url):
            async with self._engine.connect() as connection:
                raw = await connection.get_raw_connection()
                driver = raw.driver_connection
                if driver is None:
                    raise DatabaseUnavailable("no driver connection to listen on")
                closed = asyncio.Event()

                def on_notify(*_: object) -> None:
                    wake()

                def on_close(*_: object) -> None:
                    closed.set()

                driver.add_termination_listener(on_close)
                await driver.add_listener(CHANNEL, on_notify)
                try:
                    while not closed.is_set() and not driver.is_closed():
                        with suppress(TimeoutError):
                            await asyncio.wait_for(closed.wait(), self.times.renew)
                finally:
                    if not driver.is_closed():
                        await driver.remove_listener(CHANNEL, on_notify)
        raise DatabaseUnavailable("the connection listening for other instances was lost")
