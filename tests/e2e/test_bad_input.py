"""Bad input gets one clear line and changes nothing: unknown or malformed symbols, a missing
token, a database that is down when the service starts or goes down while it runs.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError

from streamer.mock_exchange import MockExchange
from tests.e2e.inprocess import Running, api, running_service
from tests.e2e.processes import CliResult, MockProcess, Spawner, run_cli
from tests.e2e.relay import proxied

TOKEN = "e2e-secret-token"


async def cli(running: Running, *args: str) -> CliResult:
    """A `streamer` command against the in-process service, run while the service keeps serving."""
    port = running.base_url.rsplit(":", 1)[1]
    return await asyncio.to_thread(run_cli, *args, "--port", port)


async def enabled(running: Running) -> list[str]:
    return await running.service.repository.enabled_symbols()


def one_error_line(result: CliResult) -> str:
    """The command's whole complaint: exactly one line on stderr, starting with `error:`."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:"), result.stderr
    return lines[0]


async def test_an_unknown_symbol_is_refused_and_changes_nothing(
    database_url: str, mock_exchange: MockExchange
) -> None:
    """Starting a symbol the settings do not know answers 404 (CLI: one error line, exit 1) and
    leaves the database and the running set as they were."""
    async with running_service(database_url, mock_exchange, ["ETHUSDT"]) as running:
        await running.until(lambda: len(running.service.registry) == 1, "the ETHUSDT worker")
        response = await api(running, "POST", "/api/settings/nosuchcoin/start")
        assert response.status_code == 404
        assert "NOSUCHCOIN" in response.json()["detail"]
        result = await cli(running, "start", "ethusdt", "nosuchcoin")
        assert result.code == 1
        assert "NOSUCHCOIN" in one_error_line(result)
        assert result.stdout == ""
        assert await enabled(running) == ["ETHUSDT"]
        listed = await api(running, "GET", "/api/settings", params={"prefix": "NOSUCH"})
        assert listed.json() == []
        assert running.service.registry.names() == ["ETHUSDT"]


async def test_a_malformed_symbol_is_refused_before_anything_happens(
    sqlite_url: str, mock_exchange: MockExchange
) -> None:
    """A malformed symbol answers 422 (CLI: one error line, exit 2) and nothing starts."""
    async with running_service(sqlite_url, mock_exchange) as running:
        response = await api(running, "POST", "/api/settings/eth-usdt-x/start")
        assert response.status_code == 422
        assert "invalid symbol 'eth-usdt-x'" in response.json()["detail"]
        result = await cli(running, "start", "ethusdt", "eth usdt!")
        assert result.code == 2
        assert "invalid symbol 'eth usdt!'" in one_error_line(result)
        assert await enabled(running) == []
        assert len(running.service.registry) == 0


async def test_a_trade_socket_for_a_malformed_symbol_is_closed_with_the_reason(
    sqlite_url: str, mock_exchange: MockExchange
) -> None:
    """`/ws/trades?symbols=eth-usdt-x` is closed with 1008 (policy violation) saying why."""
    async with running_service(sqlite_url, mock_exchange) as running:
        url = running.base_url.replace("http://", "ws://") + "/ws/trades?symbols=eth-usdt-x"
        with pytest.raises(ConnectionClosedError) as closed:
            async with connect(url) as websocket:
                await websocket.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1008
        assert closed.value.rcvd.reason.startswith("invalid symbol 'eth-usdt-x'")


async def test_mutations_need_the_token_when_one_is_set(
    sqlite_url: str, mock_exchange: MockExchange
) -> None:
    """With a token set, start without the bearer token answers 401 and changes nothing; with it,
    200 (and the CLI passes it from --token)."""
    async with running_service(sqlite_url, mock_exchange, token=TOKEN) as running:
        refused = await api(running, "POST", "/api/settings/ETHUSDT/start")
        assert refused.status_code == 401
        assert "bearer token" in refused.json()["detail"]
        wrong = await api(
            running,
            "POST",
            "/api/settings/ETHUSDT/start",
            headers={"authorization": "Bearer not-the-token"},
        )
        assert wrong.status_code == 401
        assert await enabled(running) == []
        accepted = await api(
            running,
            "POST",
            "/api/settings/ETHUSDT/start",
            headers={"authorization": f"Bearer {TOKEN}"},
        )
        assert accepted.status_code == 200
        result = await cli(running, "start", "NEOUSDT", "--token", TOKEN)
        assert result.code == 0, result.stderr
        assert await enabled(running) == ["ETHUSDT", "NEOUSDT"]


def test_serving_beyond_loopback_without_a_token_refuses_to_start(
    spawn: Spawner, exchange: MockProcess, sqlite_url: str
) -> None:
    """`streamer run --host 0.0.0.0` without a token exits 2 with one line saying what to set."""
    service = spawn.service(database_url=sqlite_url, mock=exchange, host="0.0.0.0")
    assert service.popen.wait(60) == 2
    output = service.output()
    assert "refusing to serve the API on 0.0.0.0 without a token" in output
    assert "STREAMER_TOKEN" in output
    assert "Traceback" not in output


def test_a_database_down_at_start_is_waited_for_without_crashing(
    spawn: Spawner, exchange: MockProcess
) -> None:
    """With PostgreSQL unreachable, `streamer run` logs that it waits for the database, retries
    without restarting anything, and still stops cleanly (exit 0) on SIGTERM."""
    unreachable = f"postgresql://postgres@127.0.0.1:{closed_port()}/streamer"
    service = spawn.service(database_url=unreachable, mock=exchange)
    service.wait_output(r"(?s)Waiting for the database.*Waiting for the database", "two retries")
    output = service.output()
    assert "cannot reach PostgreSQL at 127.0.0.1" in output
    assert "restarting child" not in output
    assert "Traceback" not in output
    assert service.terminate() == 0


async def test_health_answers_while_the_database_is_down_at_start(
    mock_exchange: MockExchange,
) -> None:
    """While the database is unreachable at start, `/api/health` already answers: live, not
    ready (503), so a liveness probe does not restart a service that is only waiting."""
    unreachable = f"postgresql://postgres@127.0.0.1:{closed_port()}/streamer"
    async with running_service(
        unreachable, mock_exchange, prepare=False, database_retry=0.2, listen_deadline=5.0
    ) as running:
        response = await api(running, "GET", "/api/health")
        assert response.status_code == 503
        assert response.json() == {
            "live": True,
            "ready": False,
            "database": False,
            "streaming": 0,
            "sinks": [],
            "journal": None,
        }


def closed_port() -> int:
    """A port of 127.0.0.1 that refuses connections (bound, never listening)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_a_database_outage_fails_changes_with_503_and_streaming_goes_on(
    database_url: str, mock_exchange: MockExchange
) -> None:
    """While PostgreSQL is unreachable, start and stop answer 503 with a clear message (CLI: one
    error line) and the streams go on, changed by neither; once the database is back a start
    works again."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the outage is a cut relay in front of a PostgreSQL server")
    async with (
        proxied(database_url) as (url, proxy),
        running_service(url, mock_exchange, ["ETHUSDT"]) as running,
    ):
        registry = running.service.registry
        await running.until(lambda: registry.lookup("ETHUSDT"), "the ETHUSDT worker")
        await proxy.stop()
        for action, symbol in (("start", "NEOUSDT"), ("stop", "ETHUSDT")):
            response = await api(running, "POST", f"/api/settings/{symbol}/{action}")
            assert response.status_code == 503, response.text
            assert response.json()["detail"].startswith("database unavailable: ")
        result = await cli(running, "start", "NEOUSDT")
        assert result.code == 1
        assert "PostgreSQL" in one_error_line(result)
        await running.trades_advance(["ETHUSDT"])
        assert registry.names() == ["ETHUSDT"]
        await proxy.start()
        started = await api(running, "POST", "/api/settings/NEOUSDT/start")
        assert started.status_code == 200, started.text
        assert sorted(await enabled(running)) == ["ETHUSDT", "NEOUSDT"]
        await running.until(lambda: registry.names() == ["ETHUSDT", "NEOUSDT"], "both streams")
        await running.trades_advance(["ETHUSDT", "NEOUSDT"])
        assert running.service.health().ready
