"""A PostgreSQL outage does not interrupt delivery: an instance that loses the database keeps
streaming what it owns, saves its positions once the database answers, and gives up only the
symbols another instance took meanwhile, at its first round that sees them taken.

Leases are short (ttl 2 s or 3 s, renewed every 0.5 s), so that an outage of several ttls, long
past the moment the leases expire on the database's clock, takes seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from streamer.db import SettingsRepository, create_engine
from streamer.events import Event, TradeEvent
from streamer.mock_exchange import MockConfig, MockExchange
from streamer.stream.pubsub import Subscription, topic
from tests.e2e.inprocess import running_service
from tests.e2e.processes import MockProcess, Spawner, wait_for
from tests.e2e.relay import proxied, relay_thread
from tests.e2e.test_cluster import balanced, spread, start, start_group, streaming, trading, workers
from tests.fixtures.brokers import NatsTarget
from tests.sinks.consumers import read_nats

OUTAGE_ROUNDS = 16
"""Failed rounds after the leases expired: 8 s at one round per 0.5 s, four ttls of 2 s."""


@pytest.fixture
def mock_config() -> MockConfig:
    """500 trades a second: a steady stream whose every id the test keeps."""
    return MockConfig(port=0, speed=100.0)


@pytest.fixture
async def direct(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    """The database itself, never cut."""
    engine = create_engine(postgres_url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def read(subscription: Subscription, into: list[Event]) -> None:
    while True:
        into.extend(await subscription.get_batch())


def trade_ids(events: list[Event]) -> list[int]:
    return [event.trade_id for event in events if isinstance(event, TradeEvent)]


async def leases_expired(engine: AsyncEngine, owner: str) -> None:
    """Wait until every lease of `owner` has expired on the database's clock."""
    sql = sa.text("SELECT bool_and(expires_at < now()) FROM leases WHERE owner = :owner")
    try:
        async with asyncio.timeout(20):
            while True:
                async with engine.connect() as connection:
                    if (await connection.execute(sql, {"owner": owner})).scalar_one():
                        return
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"the leases of {owner} did not expire within 20 s") from None


async def test_a_lone_instance_delivers_every_trade_through_a_database_outage(
    postgres_url: str,
    mock_exchange: MockExchange,
    direct: AsyncEngine,
    nats_target: NatsTarget,
    tmp_path: Path,
) -> None:
    """A subscriber and the NATS sink of a lone instance get consecutive ETHUSDT trade ids
    and no gap notice through an outage of the database lasting four ttls past the expiry of
    the lease, and the position is saved once the database answers again."""
    async with (
        proxied(postgres_url) as (url, relay),
        running_service(
            url,
            mock_exchange,
            ["ETHUSDT"],
            lease_ttl=2.0,
            lease_renew=0.5,
            sinks=[nats_target.sink_url()],
            journal_dir=tmp_path / "journal",
        ) as running,
    ):
        service = running.service
        ownership = service.ownership
        assert ownership is not None
        received: list[Event] = []
        reader = asyncio.create_task(read(service.pubsub.subscribe(topic("ETHUSDT")), received))
        try:
            await running.until(lambda: len(trade_ids(received)) > 0, "ETHUSDT trades")
            await relay.stop()
            await running.until(lambda: ownership.database_outage, "the outage reported")
            cut_at = len(trade_ids(received))
            await leases_expired(direct, service.instance_id)
            mark = ownership.stats.failures + OUTAGE_ROUNDS
            await running.until(lambda: ownership.stats.failures >= mark, "an outage of 4 ttls")
            assert service.registry.names() == ["ETHUSDT"]
            delivered = trade_ids(received)
            assert len(delivered) > cut_at, "no trade delivered during the outage"
            await relay.start()
            await running.until(lambda: ownership.database_outage is None, "the outage over")
            saved = (await SettingsRepository(direct).positions())["ETHUSDT"]
            assert saved >= delivered[-1]
            await running.trades_advance(["ETHUSDT"])
            [runner] = service.sinks.runners
            last = delivered[-1]
            await running.until(
                lambda: runner.durable.get("ETHUSDT", 0) >= last, "the sink past the outage"
            )
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
    ids = trade_ids(received)
    assert [event for event in received if not isinstance(event, TradeEvent)] == []
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    at_broker = (await read_nats(nats_target))["ETHUSDT"]
    at_broker.assert_exactly_once_in_order()
    assert at_broker.gaps == []
    assert set(range(ids[0], last + 1)) <= set(at_broker.trades)


def test_a_cut_off_instance_stops_what_another_took_at_its_first_round_back(
    seeded_postgres: str, spawn: Spawner, slow_exchange: MockProcess
) -> None:
    """With only a's database cut, b takes a's symbols once their leases expire while a keeps
    streaming them; the round of a that ends the outage stops exactly those symbols."""
    with relay_thread(seeded_postgres) as (relayed, relay):
        group = start_group(spawn, seeded_postgres, slow_exchange, ["a", "b"], urls={"a": relayed})
        a, b = group["a"], group["b"]
        wanted = set(trading(slow_exchange, 4))
        start(b, sorted(wanted))
        taken = sorted(wait_for(lambda: balanced(spread(group, wanted)), "4 over a and b")["a"])
        assert taken
        relay.cut()
        a.wait_output("The database does not answer", "a reporting the outage")
        wait_for(lambda: streaming(b) == wanted, "b streaming a's symbols too", process=b)
        assert workers(a) == len(taken)
        relay.restore()
        back = a.wait_output(r"The database answers again[^\n]*", "a's first round back")
        assert f"stopped {len(taken)} another instance took meanwhile: {', '.join(taken)}" in (
            back.group(0)
        )
        output = a.output()
        cut_at = output.index("The database does not answer")
        for symbol in taken:
            stopped = output.find(f"Stopping {symbol}: this instance no longer owns it", cut_at)
            assert cut_at < stopped < back.start(), (symbol, output[cut_at:])
