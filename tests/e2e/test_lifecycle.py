"""The chapter's promise with real processes: the set of streamed symbols survives every restart.

Each test drives `streamer run` and the `streamer` commands as a user would, against a mock
exchange process, on a fresh database seeded by `streamer seed` (SQLite, and PostgreSQL when
the suite has a server).
"""

from __future__ import annotations

import json
import signal
import socket
from typing import Any

import httpx
from websockets.sync.client import connect

from tests.e2e.processes import (
    DEADLINE,
    MockProcess,
    ServiceProcess,
    Spawner,
    run_cli,
    wait_for,
    wait_trades_advance,
)

PAIR = ["ETHUSDT", "NEOUSDT"]
AUTOSTART = r"Autostart: (\d+) started"


def status_json(service: ServiceProcess) -> list[dict[str, Any]]:
    """`streamer status --json` against the running service."""
    result = run_cli("status", "--json", "--port", str(service.port))
    assert result.code == 0, result.stderr
    states: list[dict[str, Any]] = json.loads(result.stdout)
    return states


def autostarted(service: ServiceProcess) -> int:
    """How many symbols the service's autostart started, once it has run."""
    return int(service.wait_output(AUTOSTART, "autostart report").group(1))


def trades_from_socket(service: ServiceProcess, symbols: list[str]) -> set[str]:
    """The symbols seen on `/ws/trades?symbols=...` until each has sent a trade."""
    url = f"ws://127.0.0.1:{service.port}/ws/trades?symbols={','.join(symbols)}"
    seen: set[str] = set()
    with connect(url, open_timeout=DEADLINE) as websocket:

        def receive() -> bool:
            event = json.loads(websocket.recv(timeout=DEADLINE))
            if event["kind"] == "trade":
                seen.add(event["symbol"])
            return seen == set(symbols)

        wait_for(receive, f"trades of {symbols} on /ws/trades", process=service)
    return seen


def active(service: ServiceProcess) -> list[tuple[str, str, str]]:
    """What `streamer status` lists (symbols on or running), read from the API directly."""
    response = httpx.get(f"{service.base_url}/api/settings", params={"active": True}, timeout=10)
    response.raise_for_status()
    return [(s["symbol"], s["status"], s["state"]) for s in response.json()]


def free_port() -> int:
    """A port nothing listens on (the kernel's pick, released at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_started_symbols_stream_after_restart_and_stopped_ones_do_not(
    spawn: Spawner, exchange: MockProcess, seeded_url: str
) -> None:
    """Symbols started in lowercase stream again after a graceful restart with no command, and
    after `streamer stop` and another restart none streams."""
    service = spawn.service(database_url=seeded_url, mock=exchange).wait_ready()
    started = run_cli("start", "ethusdt", "neousdt", "--port", str(service.port))
    assert started.code == 0, started.stderr
    assert started.stdout.splitlines() == ["ETHUSDT: started", "NEOUSDT: started"]
    assert service.terminate() == 0

    service = spawn.service(database_url=seeded_url, mock=exchange, port=service.port)
    service.wait_ready()
    assert autostarted(service) == 2
    wait_trades_advance(service, PAIR)
    assert [(s["symbol"], s["status"], s["state"]) for s in status_json(service)] == [
        ("ETHUSDT", "on", "streaming"),
        ("NEOUSDT", "on", "streaming"),
    ]
    assert trades_from_socket(service, PAIR) == set(PAIR)

    stopped = run_cli("stop", "ETHUSDT", "NEOUSDT", "--port", str(service.port))
    assert stopped.code == 0, stopped.stderr
    assert stopped.stdout.splitlines() == ["ETHUSDT: stopped", "NEOUSDT: stopped"]
    assert service.terminate() == 0

    service = spawn.service(database_url=seeded_url, mock=exchange, port=service.port)
    service.wait_ready()
    assert autostarted(service) == 0
    assert active(service) == []
    assert service.terminate() == 0


def test_symbols_stream_again_after_the_service_is_killed(
    spawn: Spawner, exchange: MockProcess, seeded_sqlite: str
) -> None:
    """After `kill -9` of the service, the next `streamer run` streams the same symbols again."""
    service = spawn.service(database_url=seeded_sqlite, mock=exchange).wait_ready()
    for symbol in PAIR:
        httpx.post(f"{service.base_url}/api/settings/{symbol}/start", timeout=10).raise_for_status()
    wait_trades_advance(service, PAIR)
    assert service.kill() == -signal.SIGKILL

    service = spawn.service(database_url=seeded_sqlite, mock=exchange).wait_ready()
    assert autostarted(service) == 2
    wait_trades_advance(service, PAIR)
    assert active(service) == [("ETHUSDT", "on", "streaming"), ("NEOUSDT", "on", "streaming")]
    assert service.terminate() == 0


def test_start_without_a_service_is_saved_for_the_next_run(
    spawn: Spawner, exchange: MockProcess, seeded_sqlite: str
) -> None:
    """`streamer start` with no service running saves the symbol, says so, and `run` streams it."""
    port = free_port()
    saved = run_cli("start", "ethusdt", "--database-url", seeded_sqlite, "--port", str(port))
    assert saved.code == 0, saved.stderr
    assert f"no service answers at http://127.0.0.1:{port}" in saved.stdout
    assert "saved ETHUSDT as on" in saved.stdout
    assert "next `streamer run`" in saved.stdout

    service = spawn.service(database_url=seeded_sqlite, mock=exchange, port=port).wait_ready()
    assert autostarted(service) == 1
    wait_trades_advance(service, ["ETHUSDT"])
    assert active(service) == [("ETHUSDT", "on", "streaming")]
    assert service.terminate() == 0


def test_sigint_stops_the_service_in_reverse_start_order_with_exit_0(
    spawn: Spawner, exchange: MockProcess, seeded_sqlite: str
) -> None:
    """Ctrl-C stops the API first, then streaming, then the root, and the exit code is 0."""
    service = spawn.service(database_url=seeded_sqlite, mock=exchange).wait_ready()
    assert service.terminate(signal.SIGINT) == 0
    output = service.output()
    order = [
        output.index("SIGINT received; stopping streamer"),
        output.index("API on http://"),
        output.index("streaming: stopped"),
        output.index("streamer: stopped"),
    ]
    assert order == sorted(order), output
