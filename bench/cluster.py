"""Several instances figures: `failover_seconds`, `rebalance_seconds`, `lease_renew_ms`.

Three `streamer run` processes with the default lease times (ttl 6 s, renewed every second) share
a fresh PostgreSQL database and stream 30 symbols of a slow mock exchange, 10 each.

- `failover_seconds`: from `kill -9` of the busiest instance until every one of its symbols
  streams on a survivor (each survivor's own API says `streaming`); median of `ROUNDS`.
- `rebalance_seconds`: from a replacement instance answering ready until the three hold 10
  symbols each again, handed over make-before-break; median of `ROUNDS`.
- `lease_renew_ms`: the mean duration of a renew round (one transaction: heartbeat, renew,
  fenced position save, rebalance, claim), from the instances' own metrics.
- `lease_cpu_share_1695`: the CPU share of one core an instance spends on its rounds when 1,695
  symbols are spread over 3 instances (565 leases renewed and positions saved each second),
  measured in-process on three `LeaseStore`s (the service's own code; the server's CPU is not
  counted).

The server is `STREAMER_BENCH_DATABASE_URL`, else `STREAMER_TEST_DATABASE_URL`, else
postgres@127.0.0.1:5432. `python -m bench.cluster` runs this piece alone and updates its rows in
docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TypeVar
from uuid import uuid4

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bench.mock_process import STREAMER, MockProcess, mock_exchange
from bench.recording import update_doc
from streamer.db import create_engine, upgrade
from streamer.db.seed import seed
from streamer.ownership.rules import LeaseTimes
from streamer.ownership.store import LeaseStore, Report

ROUNDS = 3
SYMBOLS = 30
INSTANCES = 3
SPEED = "5"
POLL = 0.05
DEADLINE = 60.0
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"

T = TypeVar("T")


def server_url() -> str:
    return (
        os.environ.get("STREAMER_BENCH_DATABASE_URL")
        or os.environ.get("STREAMER_TEST_DATABASE_URL")
        or DEFAULT_SERVER
    )


async def _admin(sql: str) -> None:
    url = make_url(server_url()).set(drivername="postgresql+asyncpg", database="postgres")
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(sql))
    finally:
        await engine.dispose()


@contextmanager
def fresh_database() -> Iterator[str]:
    name = f"streamer_bench_{uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url()).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def wait(probe: Callable[[], T | None], what: str) -> T:
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        found = probe()
        if found is not None:
            return found
        time.sleep(POLL)
    raise RuntimeError(f"no {what} within {DEADLINE:.0f} s")


class Instance:
    """One `streamer run` of the group, its log in `folder`."""

    def __init__(self, name: str, database: str, mock: MockProcess, folder: Path) -> None:
        self.name = name
        self.log = folder / f"{name}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    str(STREAMER),
                    "run",
                    "--instance-id",
                    name,
                    "--database-url",
                    database,
                    "--ws-url",
                    mock.ws_url,
                    "--rest-url",
                    mock.rest_url,
                    "--port",
                    "0",
                    "--log-level",
                    "INFO",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.base_url = ""

    def wait_ready(self) -> Instance:
        def listening() -> str | None:
            found = re.search(r"API listening on (http://\S+)", self.log.read_text())
            return found.group(1) if found else None

        self.base_url = wait(listening, f"{self.name} listening")
        wait(lambda: True if self._get("/api/health") else None, f"{self.name} ready")
        return self

    def _get(self, path: str, **params: str) -> httpx.Response | None:
        try:
            response = httpx.get(f"{self.base_url}{path}", params=params, timeout=5)
        except httpx.TransportError:
            return None
        return response if response.status_code == 200 else None

    def streaming(self) -> set[str] | None:
        response = self._get("/api/settings", active="true")
        if response is None:
            return None
        return {row["symbol"] for row in response.json() if row["state"] == "streaming"}

    def renew_ms(self) -> float:
        response = self._get("/metrics")
        assert response is not None
        values = dict(re.findall(r"^(streamer_lease_renew\w*) (\S+)$", response.text, re.M))
        return (
            1000
            * float(values["streamer_lease_renew_seconds_total"])
            / max(float(values["streamer_lease_renewals_total"]), 1.0)
        )

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


def spread(group: list[Instance], wanted: set[str]) -> dict[str, set[str]] | None:
    """Who streams what, once every wanted symbol streams exactly once."""
    sets: dict[str, set[str]] = {}
    for instance in group:
        found = instance.streaming()
        if found is None:
            return None
        sets[instance.name] = found
    if set().union(*sets.values()) != wanted or sum(map(len, sets.values())) != len(wanted):
        return None
    return sets


def balanced(group: list[Instance], wanted: set[str]) -> dict[str, set[str]] | None:
    sets = spread(group, wanted)
    if sets is None or max(map(len, sets.values())) - min(map(len, sets.values())) > 1:
        return None
    return sets


def trading(mock: MockProcess, count: int) -> list[str]:
    response = httpx.get(f"{mock.rest_url}/api/v3/exchangeInfo", timeout=30)
    response.raise_for_status()
    symbols = response.json()["symbols"]
    return sorted(s["symbol"] for s in symbols if s["status"] == "TRADING")[:count]


def measure() -> dict[str, float | str]:
    failovers: list[float] = []
    rebalances: list[float] = []
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-cluster-")))
        database = stack.enter_context(fresh_database())
        mock = stack.enter_context(mock_exchange("--speed", SPEED))
        seeded = subprocess.run(
            [str(STREAMER), "seed", "--database-url", database, "--exchange-url", mock.rest_url],
            capture_output=True,
            check=False,
        )
        if seeded.returncode != 0:
            raise RuntimeError(seeded.stderr.decode())
        group = [Instance(f"i{n}", database, mock, folder) for n in range(INSTANCES)]

        @stack.callback
        def kill_all() -> None:
            for instance in group:
                instance.kill()

        for instance in group:
            instance.wait_ready()
        wanted = set(trading(mock, SYMBOLS))
        port = group[0].base_url.rsplit(":", 1)[1]
        started = subprocess.run(
            [str(STREAMER), "start", *sorted(wanted), "--port", port],
            capture_output=True,
            check=False,
        )
        if started.returncode != 0:
            raise RuntimeError(started.stderr.decode())
        sets = wait(lambda: balanced(group, wanted), "30 symbols balanced")
        renew_ms = statistics.mean(instance.renew_ms() for instance in group)
        for round_ in range(ROUNDS):
            victim = max(group, key=lambda instance: len(sets[instance.name]))
            group.remove(victim)
            victim.kill()
            killed = time.monotonic()
            wait(lambda: spread(group, wanted), "failover")
            failovers.append(time.monotonic() - killed)
            joiner = Instance(f"j{round_}", database, mock, folder)
            group.append(joiner)
            joiner.wait_ready()
            joined = time.monotonic()
            sets = wait(lambda: balanced(group, wanted), "rebalance")
            rebalances.append(time.monotonic() - joined)
    return {
        "failover_seconds": round(statistics.median(failovers), 2),
        "rebalance_seconds": round(statistics.median(rebalances), 2),
        "lease_renew_ms": round(renew_ms, 2),
    }


CPU_SYMBOLS = 1695
CPU_SECONDS = 10


async def lease_cpu_share(database: str) -> float:
    """Client CPU per instance-second of rounds with `CPU_SYMBOLS` symbols over 3 instances."""
    await upgrade(database)
    engine = create_engine(database)
    try:
        await seed(engine, [f"S{n:04d}USDT" for n in range(CPU_SYMBOLS)])
        async with engine.begin() as connection:
            await connection.execute(text("UPDATE settings SET status = 'on'"))
        stores = [LeaseStore(engine, f"i{n}", LeaseTimes()) for n in range(INSTANCES)]
        held: list[dict[str, int]] = [{} for _ in stores]

        async def rounds() -> None:
            for n, store in enumerate(stores):
                positions = dict.fromkeys(held[n], 1)
                report = Report("127.0.0.1:0", sorted(held[n]), sorted(held[n]), positions)
                held[n] = (await store.round(report)).held

        for _ in range(4):
            await rounds()
        started = time.process_time()
        for _ in range(CPU_SECONDS):
            await rounds()
        spent = time.process_time() - started
    finally:
        await engine.dispose()
    return spent / (CPU_SECONDS * INSTANCES)


def figures() -> dict[str, float | str]:
    """Every figure of this piece (what `make bench` adds to its table)."""
    found = measure()
    with fresh_database() as database:
        found["lease_cpu_share_1695"] = round(asyncio.run(lease_cpu_share(database)), 4)
    return found


def main() -> None:
    found = figures()
    update_doc(found)
    for name, value in found.items():
        print(f"{name}: {value}")


if __name__ == "__main__":
    main()
