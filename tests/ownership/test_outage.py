"""An instance whose database stops answering keeps streaming what it owns, and gives a symbol
up only at its first round that finds the lease taken by another instance.

The instance runs its real ownership child on a real PostgreSQL server behind a relay the test
cuts; its workers are stand-ins that only park. The other instance is played by the test with a
lease store of its own that reaches the database directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from streamer.binance.config import StreamerConfig
from streamer.binance.market import SpotMarket
from streamer.db import SettingsRepository, create_engine
from streamer.otp import ChildSpec, DynamicSupervisor, Registry, Started, Strategy, Supervisor
from streamer.ownership import LeaseStore, LeaseTimes, Ownership
from streamer.ownership.store import Report
from streamer.service.streaming import Streaming
from streamer.stream.hub import StreamHub
from streamer.stream.pubsub import PubSub
from tests.fixtures.database import seed_database
from tests.fixtures.relay import Relay, relay_to, through
from tests.polling import eventually

SYMBOLS = ["S0USDT", "S1USDT", "S2USDT"]
TIMES = LeaseTimes(ttl=2.0, renew=0.5)


def parked_worker(registry: Registry) -> Callable[[str], ChildSpec]:
    def spec(symbol: str) -> ChildSpec:
        async def body(started: Started) -> None:
            started()
            await asyncio.Future()

        return ChildSpec(id=symbol, start=body, name=(registry, symbol))

    return spec


async def no_wait() -> None:
    return None


@dataclass
class Instance:
    ownership: Ownership
    registry: Registry
    positions: dict[str, int]
    supervisor: Supervisor

    def running(self) -> set[str]:
        return set(self.registry.names())


@contextlib.asynccontextmanager
async def instance(url: str, me: str) -> AsyncIterator[Instance]:
    """The streaming part of one service on `url`: workers, autostart and ownership."""
    engine = create_engine(url)
    registry = Registry("streams")
    dynamic = DynamicSupervisor(name="streamers")
    streaming = Streaming(
        repository=SettingsRepository(engine),
        supervisor=dynamic,
        registry=registry,
        worker_spec=parked_worker(registry),
    )
    positions: dict[str, int] = {}
    ownership = Ownership(
        store=LeaseStore(engine, me, TIMES),
        streaming=streaming,
        hub=StreamHub(SpotMarket(StreamerConfig()), PubSub(), registry=registry),
        registry=registry,
        address=lambda: "127.0.0.1:0",
        positions=lambda: dict(positions),
        wait_ready=no_wait,
    )
    streaming.placement = ownership
    supervisor = Supervisor(
        [dynamic.child_spec("streamers"), streaming.autostart_spec(), ownership.child_spec()],
        strategy=Strategy.REST_FOR_ONE,
        name="streaming",
    )
    up = asyncio.Event()
    task = asyncio.create_task(supervisor.run(up.set))
    await up.wait()
    try:
        yield Instance(ownership, registry, positions, supervisor)
    finally:
        await supervisor.stop()
        await task
        await engine.dispose()


@pytest.fixture
async def cut(postgres_url: str) -> AsyncIterator[tuple[str, Relay]]:
    """Three symbols on, and the database's URL through a relay the test can stop."""
    await seed_database(postgres_url, SYMBOLS, on=SYMBOLS)
    async with relay_to(postgres_url) as relay:
        yield through(postgres_url, relay), relay


@pytest.fixture
async def direct(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    """The database as the other instances see it: never cut."""
    engine = create_engine(postgres_url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def query(engine: AsyncEngine, sql: str) -> list[sa.Row[object]]:
    """Run `sql` on the database directly; its rows, if it returns any."""
    async with engine.begin() as connection:
        result = await connection.execute(sa.text(sql))
        return list(result.all()) if result.returns_rows else []


async def until_query(engine: AsyncEngine, sql: str, what: str) -> None:
    """Wait until `sql`'s one value is true; fail saying so if it is not within 20 s."""
    try:
        async with asyncio.timeout(20):
            while not (await query(engine, sql))[0][0]:  # noqa: ASYNC110 - database state
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"no {what} within 20 s") from None


async def failed_rounds(a: Instance, more: int) -> None:
    """Wait until `a` has run `more` further rounds that did not reach the database."""
    mark = a.ownership.stats.failures + more
    await eventually(lambda: a.ownership.stats.failures >= mark)


async def test_a_lone_instance_streams_on_through_an_outage_and_saves_positions_after(
    cut: tuple[str, Relay], direct: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    """With the database cut, its streams go on past the expiry of its leases, the outage is
    reported (WARNING, `database_outage`); the first round after it saves the positions at the
    epochs still held, reports the end (INFO) and keeps every stream."""
    url, relay = cut
    caplog.set_level(logging.INFO, logger="streamer.ownership")
    async with instance(url, "a") as a:
        await eventually(lambda: a.running() == set(SYMBOLS))
        epochs = a.ownership.holdings.owned()
        assert a.ownership.database_outage is None
        await relay.stop()
        await eventually(lambda: a.ownership.database_outage is not None)
        assert "The database does not answer" in caplog.text
        await until_query(
            direct,
            "SELECT bool_and(expires_at < now()) FROM leases WHERE owner = 'a'",
            "a's leases expired on the database's clock",
        )
        await failed_rounds(a, 2)
        assert a.running() == set(SYMBOLS)
        outage = a.ownership.database_outage
        assert outage is not None
        assert outage.reason

        a.positions.update(dict.fromkeys(SYMBOLS, 500))
        await relay.start()
        await eventually(lambda: a.ownership.database_outage is None)
        assert a.running() == set(SYMBOLS)
        assert a.ownership.holdings.owned() == epochs
        saved = await SettingsRepository(direct).positions()
        assert {symbol: saved.get(symbol) for symbol in SYMBOLS} == dict.fromkeys(SYMBOLS, 500)
        assert "The database answers again" in caplog.text
        assert "none was taken by another instance" in caplog.text


async def test_a_symbol_taken_during_the_outage_stops_at_the_first_round_that_sees_it(
    cut: tuple[str, Relay], direct: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    """Another instance takes one expired lease while the database is cut: that symbol streams
    on here until the database answers, then the round that ends the outage stops it, keeps the
    others, and saves only their positions (the new owner's position stays)."""
    url, relay = cut
    caplog.set_level(logging.INFO, logger="streamer.ownership")
    async with instance(url, "a") as a:
        await eventually(lambda: a.running() == set(SYMBOLS))
        await relay.stop()
        await eventually(lambda: a.ownership.database_outage is not None)
        await query(
            direct,
            "UPDATE leases SET expires_at = CASE WHEN symbol = 'S1USDT' "
            "THEN now() - interval '1 second' ELSE now() + interval '1 hour' END "
            "WHERE owner = 'a'",
        )
        b = LeaseStore(direct, "b", TIMES)
        taken = await b.round(Report(address="127.0.0.1:1", running=[], streaming=[], positions={}))
        assert set(taken.claimed) == {"S1USDT"}
        await b.save_positions(taken.held, {"S1USDT": 300})
        await query(
            direct, "UPDATE leases SET expires_at = now() + interval '1 hour' WHERE owner = 'b'"
        )
        await failed_rounds(a, 1)
        assert a.running() == set(SYMBOLS)

        a.positions.update(dict.fromkeys(SYMBOLS, 500))
        await relay.start()
        await eventually(lambda: a.ownership.database_outage is None)
        assert a.running() == {"S0USDT", "S2USDT"}
        saved = await SettingsRepository(direct).positions()
        assert {symbol: saved.get(symbol) for symbol in SYMBOLS} == {
            "S0USDT": 500,
            "S1USDT": 300,
            "S2USDT": 500,
        }
        assert "stopped 1 another instance took meanwhile: S1USDT" in caplog.text


async def test_sigterm_during_an_outage_leaves_at_once_without_a_hand_over(
    cut: tuple[str, Relay], direct: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    """Stopped while the database is cut, the instance does not wait for a hand-over nobody can
    make: it says so and leaves its leases to expire, for the others to claim."""
    url, relay = cut
    caplog.set_level(logging.INFO, logger="streamer.ownership")
    async with instance(url, "a") as a:
        await eventually(lambda: a.running() == set(SYMBOLS))
        await relay.stop()
        await eventually(lambda: a.ownership.database_outage is not None)
    assert "Stopping without a hand-over: the database does not answer" in caplog.text
    assert "Could not hand over" not in caplog.text
    owners = await query(direct, "SELECT DISTINCT owner FROM leases")
    assert [row[0] for row in owners] == ["a"]
