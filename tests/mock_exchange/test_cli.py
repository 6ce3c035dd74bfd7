"""`streamer mock-exchange` as a user runs it: prints its URLs, serves, stops on signals."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

STREAMER = str(Path(sys.executable).parent / "streamer")


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [STREAMER, "mock-exchange", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def urls(process: subprocess.Popen[str]) -> dict[str, str]:
    """The `name: url` lines (and the `Data:` line) printed once the server listens."""
    assert process.stdout is not None
    found: dict[str, str] = {}
    while len(found) < 4:
        line = process.stdout.readline()
        assert line, f"exited early: {process.stderr.read() if process.stderr else ''}"
        name, _, url = line.partition(":")
        found[name] = url.strip()
    return found


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serves_on_one_port_and_stops_on_signals(tiny_data: Path, signum: signal.Signals) -> None:
    """It prints REST, WS and admin URLs on one port and what data it replays, serves, and exits
    0 on SIGTERM or Ctrl-C."""
    process = start("--port", "0", "--data-dir", str(tiny_data))
    try:
        found = urls(process)
        assert found["REST"].startswith("http://127.0.0.1:")
        assert found["WS"] == found["REST"].replace("http://", "ws://")
        assert found["Admin"] == found["REST"] + "/_mock/"
        assert found["Data"].startswith("replaying recorded trades of ")
        assert "BNBBTC" in found["Data"]
        assert f" from {tiny_data};" in found["Data"]
        assert httpx.get(found["REST"] + "/api/v3/ping").json() == {}
        process.send_signal(signum)
        out, err = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 0
    assert "stopped" in out
    assert "Traceback" not in err


def test_bad_speed_is_a_usage_error() -> None:
    """A speed that is neither a positive number nor 'max' exits 2 naming the value."""
    result = subprocess.run(
        [STREAMER, "mock-exchange", "--speed", "fast"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "'fast'" in result.stderr


def test_unreadable_exchange_info_is_one_line(tmp_path: Path) -> None:
    """A missing exchangeInfo file exits 1 with one `error:` line."""
    result = subprocess.run(
        [STREAMER, "mock-exchange", "--port", "0", "--exchange-info", str(tmp_path / "no.json")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot read exchangeInfo")
    assert len(result.stderr.strip().splitlines()) == 1


def test_busy_port_is_one_line(tiny_data: Path) -> None:
    """A port already in use exits 1 with one `error:` line."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [STREAMER, "mock-exchange", "--port", str(port), "--data-dir", str(tiny_data)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert result.stderr.startswith("error:")
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_data_folder_is_one_line(tmp_path: Path) -> None:
    """A --data-dir that does not exist exits 1 with one `error:` line."""
    result = subprocess.run(
        [STREAMER, "mock-exchange", "--port", "0", "--data-dir", str(tmp_path / "absent")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: data folder {tmp_path / 'absent'} does not exist"


@pytest.mark.parametrize("port", ["-1", "65536", "99999"])
def test_a_port_outside_the_tcp_range_is_a_usage_error(port: str) -> None:
    """A port outside 0-65535 exits 2 before anything listens."""
    result = subprocess.run(
        [STREAMER, "mock-exchange", "--port", port], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "--port" in result.stderr
