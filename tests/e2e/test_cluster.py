"""Several `streamer run` processes on one PostgreSQL database: each enabled symbol is streamed by
exactly one of them, through joins, stops sent anywhere, kills, partitions and SIGTERM.

Leases are short here (ttl 3 s, renewed every 0.5 s) so that failovers take seconds. What each
instance streams is read from that instance itself: the symbols its own API reports streaming.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from streamer.db import create_engine
from tests.e2e.processes import (
    DEADLINE,
    MockProcess,
    ServiceProcess,
    Spawner,
    run_cli,
    wait_for,
)
from tests.e2e.relay import relay_thread

LEASES = ["--lease-ttl", "3", "--lease-renew", "0.5"]

Group = dict[str, ServiceProcess]


def start_group(
    spawn: Spawner,
    url: str,
    mock: MockProcess,
    names: list[str],
    urls: dict[str, str] | None = None,
) -> Group:
    """Instances named `names`, all serving (each on `urls[name]` if given, else `url`)."""
    group = {
        name: spawn.service(
            database_url=(urls or {}).get(name, url),
            mock=mock,
            args=["--instance-id", name, *LEASES],
        )
        for name in names
    }
    for service in group.values():
        service.wait_ready()
    return group


def streaming(service: ServiceProcess) -> set[str] | None:
    """The symbols this instance says it streams now (None if it does not answer)."""
    try:
        response = httpx.get(f"{service.base_url}/api/settings", params={"active": True}, timeout=5)
    except httpx.TransportError:
        return None
    if response.status_code != 200:
        return None
    return {row["symbol"] for row in response.json() if row["state"] == "streaming"}


def workers(service: ServiceProcess) -> int:
    """How many workers the instance runs, from its health report (answers without database)."""
    report = httpx.get(f"{service.base_url}/api/health", timeout=5).json()
    count: int = report["streaming"]
    return count


def spread(
    group: Group, wanted: set[str], *, twice_fails: bool = False
) -> dict[str, set[str]] | None:
    """Each instance's streamed symbols once together they are exactly `wanted`, each once.

    With `twice_fails`, a symbol streamed by two instances at once fails the test at once.
    """
    sets: dict[str, set[str]] = {}
    for name, service in group.items():
        found = streaming(service)
        if found is None:
            return None
        sets[name] = found
    if twice_fails:
        for name, symbols in sets.items():
            for other, others in sets.items():
                assert name >= other or not symbols & others, (
                    f"streamed by both {name} and {other}: {sorted(symbols & others)}"
                )
    union = set().union(*sets.values())
    if union != wanted or sum(len(s) for s in sets.values()) != len(wanted):
        return None
    return sets


def balanced(sets: dict[str, set[str]] | None) -> dict[str, set[str]] | None:
    if sets is None:
        return None
    sizes = [len(s) for s in sets.values()]
    return sets if max(sizes) - min(sizes) <= 1 else None


def cluster(service: ServiceProcess) -> list[dict[str, Any]]:
    response = httpx.get(f"{service.base_url}/api/cluster", timeout=10)
    response.raise_for_status()
    instances: list[dict[str, Any]] = response.json()["instances"]
    return instances


def owners(service: ServiceProcess) -> dict[str, str | None]:
    result = run_cli("status", "--json", "--port", str(service.port))
    assert result.code == 0, result.stderr
    return {row["symbol"]: row["owner"] for row in json.loads(result.stdout)}


def trading(mock: MockProcess, count: int) -> list[str]:
    """The first `count` symbols the exchange trades (others stream no trades)."""
    response = httpx.get(f"{mock.rest_url}/api/v3/exchangeInfo", timeout=30)
    response.raise_for_status()
    symbols = response.json()["symbols"]
    return sorted(s["symbol"] for s in symbols if s["status"] == "TRADING")[:count]


def start(service: ServiceProcess, symbols: list[str]) -> None:
    result = run_cli("start", *symbols, "--port", str(service.port))
    assert result.code == 0, result.stderr


def test_symbols_spread_over_three_instances_stop_anywhere_and_fail_over_after_kill_9(
    seeded_postgres: str, spawn: Spawner, slow_exchange: MockProcess
) -> None:
    """30 symbols started through one of three instances stream once each, evenly; a stop sent
    to one instance stops the symbol on its owner; after `kill -9` of the busiest instance every
    symbol streams again on the survivors, never on two at once."""
    group = start_group(spawn, seeded_postgres, slow_exchange, ["a", "b", "c"])
    symbols = trading(slow_exchange, 31)
    wanted, extra = set(symbols[:30]), symbols[30]
    start(group["a"], sorted(wanted))
    sets = wait_for(lambda: balanced(spread(group, wanted)), "30 symbols spread over a, b, c")
    assert sorted(len(s) for s in sets.values()) == [10, 10, 10]
    listed = {row["id"]: set(row["symbols"]) for row in cluster(group["b"])}
    assert listed == sets
    shown = owners(group["c"])
    assert {symbol: shown[symbol] for symbol in wanted} == {
        symbol: name for name, owned in sets.items() for symbol in owned
    }

    owned_by_b = sorted(sets["b"])[0]
    result = run_cli("stop", owned_by_b, "--port", str(group["a"].port))
    assert result.code == 0, result.stderr
    wanted.discard(owned_by_b)
    wait_for(lambda: spread(group, wanted), f"{owned_by_b} stopped on b", process=group["b"])
    start(group["a"], [extra])
    wanted.add(extra)
    wait_for(lambda: spread(group, wanted), f"{extra} streaming somewhere")

    sets = wait_for(lambda: spread(group, wanted), "a settled group")
    busiest = max(sets, key=lambda name: len(sets[name]))
    group.pop(busiest).kill()
    after = wait_for(
        lambda: spread(group, wanted, twice_fails=True), f"every symbol of {busiest} elsewhere"
    )
    assert set().union(*after.values()) == wanted
    assert {row["id"] for row in cluster(next(iter(group.values())))} == set(group)


def leases_unexpired(url: str, owner: str) -> int:
    """How many leases `owner` holds that have not expired, on the database's clock."""

    async def count() -> int:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                found = await connection.execute(
                    sa.text("SELECT count(*) FROM leases WHERE owner = :o AND expires_at > now()"),
                    {"o": owner},
                )
                return int(found.scalar_one())
        finally:
            await engine.dispose()

    return asyncio.run(count())


def test_an_instance_cut_from_the_database_streams_on_until_it_sees_its_symbols_taken(
    seeded_postgres: str, spawn: Spawner, slow_exchange: MockProcess
) -> None:
    """An instance that loses the database keeps streaming its symbols past the expiry of its
    leases while the others take them over; once it reaches the database again, the group
    settles back to each symbol streamed once."""
    with relay_thread(seeded_postgres) as (relayed, relay):
        group = start_group(
            spawn, seeded_postgres, slow_exchange, ["a", "b", "c"], urls={"c": relayed}
        )
        wanted = set(trading(slow_exchange, 9))
        start(group["a"], sorted(wanted))
        sets = wait_for(lambda: balanced(spread(group, wanted)), "9 symbols over a, b, c")
        assert sets["c"]
        relay.cut()
        wait_for(lambda: leases_unexpired(seeded_postgres, "c") == 0, "c's leases expiring")
        survivors = {name: group[name] for name in ("a", "b")}
        wait_for(lambda: spread(survivors, wanted), "a and b streaming every symbol")
        assert workers(group["c"]) == len(sets["c"])
        relay.restore()
        wait_for(lambda: balanced(spread(group, wanted)), "each symbol once over a, b, c")


class Recorder:
    """Every trade id a service's `/ws/trades` delivers, per symbol; `pump()` reads what came."""

    def __init__(self, socket: ClientConnection, symbols: list[str]) -> None:
        self._socket = socket
        self.ids: dict[str, list[int]] = {symbol: [] for symbol in symbols}
        self.others: list[dict[str, Any]] = []

    def pump(self) -> Recorder:
        """Read every event already received, without waiting for more."""
        while True:
            try:
                event = json.loads(self._socket.recv(timeout=0))
            except (TimeoutError, ConnectionClosed):
                return self
            if event["kind"] == "trade":
                self.ids[event["symbol"]].append(event["trade_id"])
            else:
                self.others.append(event)


Record = Callable[[ServiceProcess, list[str]], Recorder]


@pytest.fixture
def record() -> Iterator[Record]:
    """Opens recorders on services' `/ws/trades`, all closed when the test ends."""
    with contextlib.ExitStack() as stack:

        def open_recorder(service: ServiceProcess, symbols: list[str]) -> Recorder:
            url = f"ws://127.0.0.1:{service.port}/ws/trades?symbols={','.join(symbols)}"
            return Recorder(stack.enter_context(connect(url, open_timeout=DEADLINE)), symbols)

        yield open_recorder


def test_sigterm_hands_symbols_over_before_stopping_them(
    seeded_postgres: str, spawn: Spawner, slow_exchange: MockProcess, record: Record
) -> None:
    """SIGTERM of one of two instances moves its symbols to the other make-before-break: a
    subscriber of the new owner, together with one of the old, misses no trade in between."""
    group = start_group(spawn, seeded_postgres, slow_exchange, ["a", "b"])
    symbols = trading(slow_exchange, 4)
    start(group["a"], symbols)
    sets = wait_for(lambda: balanced(spread(group, set(symbols))), "4 symbols over a and b")
    moving = sorted(sets["b"])
    old = record(group["b"], moving)
    new = record(group["a"], moving)
    wait_for(lambda: all(old.pump().ids[s] for s in moving), "trades of b's symbols at b")
    assert group["b"].terminate() == 0
    old.pump()
    wait_for(lambda: streaming(group["a"]) == set(symbols), "a streaming every symbol")
    wait_for(
        lambda: all(len(new.pump().ids[s]) > 3 for s in moving), "trades of the moved symbols at a"
    )
    assert {event["kind"] for event in new.others} <= {"notice"}, new.others
    for symbol in moving:
        before, after = old.ids[symbol], new.ids[symbol]
        assert before, symbol
        assert after[0] <= before[-1] + 1, (symbol, before[-3:], after[:3])
        assert after == list(range(after[0], after[-1] + 1)), symbol


def test_a_second_instance_on_one_sqlite_file_refuses_to_start(
    spawn: Spawner, tmp_path: Path, slow_exchange: MockProcess
) -> None:
    """SQLite serves one instance: a second `streamer run` on the same file exits with one
    error line naming the running instance, and the first keeps serving."""
    url = f"sqlite:///{tmp_path / 'streamer.db'}"
    first = spawn.service(database_url=url, mock=slow_exchange, args=["--instance-id", "first"])
    first.wait_ready()
    second = spawn.service(database_url=url, mock=slow_exchange, args=["--instance-id", "second"])
    assert second.popen.wait(DEADLINE) == 1
    errors = [line for line in second.output().splitlines() if line.startswith("error:")]
    assert len(errors) == 1, second.output()
    assert "first" in errors[0]
    assert streaming(first) is not None
