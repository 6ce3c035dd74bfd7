"""The lease statements on a real PostgreSQL server: claims, expiry on the database's clock,
fenced position saves, offers and the view of the group."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from streamer.db import SettingsRepository, create_engine
from streamer.ownership.rules import LeaseTimes
from streamer.ownership.store import LeaseStore, Report
from tests.fixtures.database import seed_database

SYMBOLS = [f"S{n}USDT" for n in range(6)]
TIMES = LeaseTimes(ttl=3.0, renew=0.5)


@pytest.fixture
async def engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    """A database with six symbols, all on."""
    await seed_database(postgres_url, SYMBOLS, on=SYMBOLS)
    created = create_engine(postgres_url)
    try:
        yield created
    finally:
        await created.dispose()


def report(**overrides: object) -> Report:
    values: dict[str, object] = {
        "address": "127.0.0.1:8000",
        "running": [],
        "streaming": [],
        "positions": {},
    }
    values.update(overrides)
    return Report(**values)  # type: ignore[arg-type]


async def expire(engine: AsyncEngine, owner: str) -> None:
    """Age `owner`'s leases and heartbeat past the ttl, as if it had stopped renewing."""
    async with engine.begin() as connection:
        await connection.execute(
            sa.text("UPDATE leases SET expires_at = now() - interval '1 second' WHERE owner = :o"),
            {"o": owner},
        )
        await connection.execute(
            sa.text("UPDATE instances SET last_seen = now() - interval '1 hour' WHERE id = :o"),
            {"o": owner},
        )


async def test_concurrent_claims_split_the_symbols_without_overlap(engine: AsyncEngine) -> None:
    """Two instances whose rounds run at once take different symbols, three each."""
    a, b = LeaseStore(engine, "a", TIMES), LeaseStore(engine, "b", TIMES)
    await a.round(report())
    await b.round(report())
    for _ in range(3):
        first, second = await asyncio.gather(a.round(report()), b.round(report()))
    assert set(first.held).isdisjoint(second.held)
    assert set(first.held) | set(second.held) == set(SYMBOLS)
    assert (len(first.held), len(second.held)) == (3, 3)


async def test_a_live_lease_is_not_taken_and_an_expired_one_is_with_a_new_epoch(
    engine: AsyncEngine,
) -> None:
    """Another instance takes a's symbols only once a's leases expired on the database clock;
    each takeover raises the epoch and counts as one."""
    a, b = LeaseStore(engine, "a", TIMES), LeaseStore(engine, "b", TIMES)
    held = (await a.round(report())).held
    assert set(held) == set(SYMBOLS)
    await expire(engine, "a")
    taken = await b.round(report())
    assert set(taken.held) == set(SYMBOLS)
    assert taken.takeovers == len(SYMBOLS)
    assert all(taken.held[symbol] == held[symbol] + 1 for symbol in SYMBOLS)
    assert (await a.round(report())).held == {}


async def test_a_stale_owner_cannot_save_positions(engine: AsyncEngine) -> None:
    """Once a lease moved on, its former owner's save (at its old epoch) changes nothing, while
    the new owner's save is kept and handed to whoever claims next."""
    a, b = LeaseStore(engine, "a", TIMES), LeaseStore(engine, "b", TIMES)
    old = (await a.round(report())).held
    assert await a.save_positions(old, {"S0USDT": 100}) == 1
    await expire(engine, "a")
    new = (await b.round(report())).held
    assert new["S0USDT"] == old["S0USDT"] + 1
    assert await a.save_positions(old, {"S0USDT": 50}) == 0
    assert await b.save_positions(new, {"S0USDT": 120}) == 1
    assert (await SettingsRepository(engine).positions())["S0USDT"] == 120


async def test_an_instance_above_its_share_offers_the_excess_and_a_joiner_takes_it(
    engine: AsyncEngine,
) -> None:
    """A joiner makes a's share three: a offers three leases, b takes exactly those, and a's
    handover of each ends once b reports it streaming."""
    a, b = LeaseStore(engine, "a", TIMES), LeaseStore(engine, "b", TIMES)
    await a.round(report())
    await b.round(report())
    offered = (await a.round(report())).offered
    assert len(offered) == 3
    taken = await b.round(report())
    assert set(taken.claimed) == offered
    waiting = await a.round(report(handing=sorted(offered)))
    assert waiting.handed_over == frozenset()
    await b.round(report(streaming=sorted(offered)))
    done = await a.round(report(handing=sorted(offered)))
    assert done.handed_over == offered


async def test_the_group_lists_live_instances_and_owners(engine: AsyncEngine) -> None:
    """Live instances are listed with what they stream; a dead one and its leases are not."""
    a, b = LeaseStore(engine, "a", TIMES), LeaseStore(engine, "b", TIMES)
    await a.round(report(running=["S0USDT"]))
    await b.round(report(address="127.0.0.1:8001"))
    assert [(i.id, i.symbols) for i in await a.instances()] == [("a", ["S0USDT"]), ("b", [])]
    assert set((await a.owners()).values()) == {"a"}
    await expire(engine, "a")
    assert [i.id for i in await b.instances()] == ["b"]
    assert await b.owners() == {}
