"""The journal between the stream and the brokers, end to end: a long broker outage, `kill -9`
in the middle of a burst, and an instance that rejoins its group lose nothing and announce
nothing, in NATS, Redis and the Parquet recording alike.

Read back by independent consumers (`tests.sinks.consumers`) and by pyarrow for the recording.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pyarrow.dataset as ds
import pytest
import sqlalchemy as sa

from streamer.db import create_engine
from streamer.mock_exchange import MockConfig, MockExchange
from streamer.sinks.runner import SinkRunner, SinkState
from tests.e2e.inprocess import Running, running_service
from tests.e2e.processes import MockProcess, ServiceProcess, Spawner, run_cli, wait_for
from tests.e2e.test_cluster import LEASES, spread, start
from tests.fixtures.brokers import NatsTarget, RedisTarget
from tests.fixtures.relay import Relay, relay_to, through
from tests.sinks.consumers import Received, read_nats, read_redis

SYMBOL = "ETHUSDT"
"""A symbol the mock makes trades up for: contiguous ids, so any hole is a loss."""
OUTAGE_TRADES = 600_000
"""Ten minutes of a busy symbol at 1,000 trades/s, streamed here at about 20,000/s."""

Target = NatsTarget | RedisTarget


@pytest.fixture
def mock_config() -> MockConfig:
    return MockConfig(port=0, speed=1000.0, synthetic_rate=20.0)


@pytest.fixture(params=["nats", "redis"])
def target(request: pytest.FixtureRequest) -> Target:
    fixture: Target = request.getfixturevalue(f"{request.param}_target")
    return fixture


@pytest.fixture
async def relay(target: Target) -> AsyncIterator[Relay]:
    async with relay_to(target.server) as running:
        yield running


async def read_back(target: Target) -> dict[str, Received]:
    return await (read_nats(target) if isinstance(target, NatsTarget) else read_redis(target))


def the_runner(running: Running) -> SinkRunner:
    [runner] = running.service.sinks.runners
    return runner


async def test_a_ten_minute_broker_outage_loses_no_trade_and_announces_none(
    sqlite_url: str, mock_exchange: MockExchange, target: Target, relay: Relay
) -> None:
    """While the broker is away for 600,000 trades (ten minutes at 1,000 trades/s) the journal
    holds them; once it is back the consumer reads every one, once, in order, and no gap."""
    url = target.sink_url(through(target.server, relay), retry_cap=0.5, timeout=2)
    async with running_service(sqlite_url, mock_exchange, [SYMBOL], sinks=[url]) as running:
        runner = the_runner(running)
        journal = running.service.journal
        assert journal is not None
        await running.until(lambda: runner.published > 1000, "trades at the broker")
        await relay.stop()
        await running.until(lambda: runner.state is SinkState.RETRYING, "the sink retrying")
        start = journal.appended_total
        await running.until(
            lambda: journal.appended_total - start >= OUTAGE_TRADES,
            "the outage's trades",
            deadline=120,
        )
        held = runner.stats().lag
        await relay.start()
        await running.until(lambda: runner.stats().lag < 1000, "the sink caught up", deadline=120)
        stats = runner.stats()
    assert held >= OUTAGE_TRADES
    assert (stats.lost, stats.refetched) == (0, 0)
    received = (await read_back(target))[SYMBOL]
    received.assert_exactly_once_in_order()
    assert received.gaps == []
    assert len(received.trades) >= OUTAGE_TRADES


def sink_lag(service: ServiceProcess) -> dict[str, int]:
    sinks = httpx.get(f"{service.base_url}/api/health", timeout=10).json()["sinks"]
    return {sink["name"]: int(sink["lag"]) for sink in sinks}


def positions(service: ServiceProcess) -> dict[str, int]:
    rows = httpx.get(f"{service.base_url}/api/settings", timeout=10).json()
    return {row["symbol"]: row["last_trade_id"] or 0 for row in rows if row["status"] == "on"}


def parquet_ids(folder: Path) -> dict[str, list[int]]:
    table = ds.dataset(folder, format="parquet", partitioning="hive").to_table(
        columns=["symbol", "trade_id"]
    )
    ids: dict[str, list[int]] = {}
    for symbol, trade_id in zip(
        table.column("symbol").to_pylist(), table.column("trade_id").to_pylist(), strict=True
    ):
        ids.setdefault(str(symbol), []).append(trade_id)
    return {symbol: sorted(found) for symbol, found in ids.items()}


def test_kill_9_mid_burst_then_run_every_trade_once_in_nats_redis_and_parquet(
    spawn: Spawner,
    seeded_sqlite: str,
    nats_target: NatsTarget,
    redis_target: RedisTarget,
    tmp_path: Path,
) -> None:
    """`kill -9` while three sinks are busy, then `run`: NATS, Redis and the recording each
    hold every trade id of the run exactly once, with nothing missing and no gap notice."""
    fast = spawn.mock(speed=1000.0)
    recording = tmp_path / "recording"
    args = [
        *("--sink", nats_target.sink_url()),
        *("--sink", redis_target.sink_url()),
        *("--sink", f"parquet://{recording}"),
    ]
    service = spawn.service(database_url=seeded_sqlite, mock=fast, args=args).wait_ready()
    started = run_cli("start", SYMBOL, "--port", str(service.port))
    assert started.code == 0, started.stderr
    wait_for(lambda: positions(service).get(SYMBOL, 0) > 0, "a saved position")
    wait_for(lambda: min(sink_lag(service).values()) == 0 or None, "the sinks streaming")
    wait_for(lambda: sum(sink_lag(service).values()) > 0 or None, "a burst the sinks lag behind")
    service.kill()
    service = spawn.service(database_url=seeded_sqlite, mock=fast, args=args).wait_ready()
    goal = wait_for(lambda: positions(service).get(SYMBOL), "the symbol streaming again") + 5_000
    wait_for(lambda: positions(service).get(SYMBOL, 0) > goal or None, "5,000 more trades")
    assert service.terminate() == 0

    nats_got = asyncio.run(read_nats(nats_target))[SYMBOL]
    redis_got = asyncio.run(read_redis(redis_target))[SYMBOL]
    recorded = parquet_ids(recording)[SYMBOL]
    for got in (nats_got, redis_got):
        got.assert_exactly_once_in_order()
        assert got.gaps == []
    assert recorded == list(range(recorded[0], recorded[-1] + 1))
    assert nats_got.trades[0] == redis_got.trades[0] == recorded[0]
    assert min(nats_got.trades[-1], redis_got.trades[-1], recorded[-1]) > goal


def test_a_rejoining_instance_announces_no_gap_for_delivered_trades(
    seeded_postgres: str, spawn: Spawner, slow_exchange: MockProcess, nats_target: NatsTarget
) -> None:
    """Two `kill -9` and a SIGTERM-and-restart in a group of two, each instance with the
    same broker: every trade reaches it once, in order, and not one gap notice is sent."""
    args = ["--sink", nats_target.sink_url()]

    def instance(name: str) -> ServiceProcess:
        return spawn.service(
            database_url=seeded_postgres,
            mock=slow_exchange,
            args=["--instance-id", name, *LEASES, *args],
        ).wait_ready()

    group = {"a": instance("a"), "b": instance("b")}
    wanted = {"ETHUSDT", "NEOUSDT", "LTCUSDT", "XRPUSDT"}
    start(group["a"], sorted(wanted))
    wait_for(lambda: spread(group, wanted), "four symbols spread over a and b")
    # A symbol's first position is saved at its owner's next round; one killed before that
    # has none, and the next owner can only start at the live edge.
    wait_for(lambda: saved(seeded_postgres, wanted), "a saved position for every symbol")
    for victim, how in (("a", "kill"), ("b", "kill"), ("a", "terminate")):
        process = group.pop(victim)
        if how == "kill":
            process.kill()
        else:
            assert process.terminate() == 0
        wait_for(lambda: spread(group, wanted), f"every symbol of {victim} taken over")
        group[victim] = instance(victim)
        wait_for(functools.partial(rejoined, group, wanted, victim), f"{victim} back")
    for process in group.values():
        assert process.terminate() == 0
    received = asyncio.run(read_nats(nats_target))
    assert set(received) == wanted
    for symbol, got in received.items():
        got.assert_exactly_once_in_order()
        assert got.gaps == [], f"{symbol}: {got.gaps}"


def saved(url: str, symbols: set[str]) -> bool:
    async def count() -> int:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(
                    sa.text(
                        "SELECT count(*) FROM settings WHERE last_trade_id IS NOT NULL "
                        "AND symbol = ANY(CAST(:symbols AS text[]))"
                    ),
                    {"symbols": sorted(symbols)},
                )
                return int(rows.scalar_one())
        finally:
            await engine.dispose()

    return asyncio.run(count()) == len(symbols)


def rejoined(group: dict[str, ServiceProcess], wanted: set[str], name: str) -> bool:
    """Every symbol streams once, and the instance `name` streams some of them."""
    sets = spread(group, wanted)
    return sets is not None and bool(sets[name])
