"""Real `streamer` processes for end-to-end tests: started on free ports, awaited through the
signals they give when ready, and always killed when the test ends, whatever its outcome.

Readiness is polled with a generous deadline: a deadline that passes fails the test with the
process's own output, so a slow machine makes a test slower, never wrong.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

STREAMER = Path(sys.executable).with_name("streamer")
DEADLINE = 30.0
"""Seconds a readiness wait may take before it fails; far beyond what a loaded machine needs."""
POLL = 0.05
SERVICE_SETTINGS = (
    "DATABASE_URL",
    "WS_URL",
    "REST_URL",
    "HOST",
    "PORT",
    "TOKEN",
    "LOG_LEVEL",
    "INSTANCE_ID",
    "LEASE_TTL",
    "LEASE_RENEW",
    "SINKS",
    "SINK_REQUIRED",
    "JOURNAL_DIR",
    "JOURNAL_MAX_BYTES",
    "JOURNAL_FSYNC",
)

T = TypeVar("T")


def child_env() -> dict[str, str]:
    """This environment minus the service's own settings, so only the test decides them."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key.removeprefix("STREAMER_") not in SERVICE_SETTINGS
    }
    env["PYTHONUNBUFFERED"] = "1"
    return env


def wait_for(
    probe: Callable[[], T | None],
    what: str,
    *,
    deadline: float = DEADLINE,
    process: Spawned | None = None,
) -> T:
    """Poll `probe` until it returns something other than None (or False), or fail saying `what`.

    When `process` dies meanwhile the wait fails at once, with the process's output.
    """
    end = time.monotonic() + deadline
    while True:
        result = probe()
        if result is not None and result is not False:
            return result
        if process is not None and process.returncode() is not None:
            raise AssertionError(
                f"{process.name} exited with {process.returncode()} while waiting for {what}:\n"
                f"{process.output()}"
            )
        if time.monotonic() > end:
            detail = f"\n{process.name} output:\n{process.output()}" if process else ""
            raise AssertionError(f"no {what} within {deadline:.0f} s{detail}")
        time.sleep(POLL)


class Spawned:
    """One `streamer` sub-command running as a child process, its output kept in a file."""

    def __init__(self, name: str, args: list[str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.popen = subprocess.Popen(
            [str(STREAMER), *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child_env(),
            start_new_session=True,
        )

    def returncode(self) -> int | None:
        return self.popen.poll()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_output(self, pattern: str, what: str) -> re.Match[str]:
        """The first match of `pattern` in the output, waiting for it to appear."""
        compiled = re.compile(pattern)
        return wait_for(lambda: compiled.search(self.output()), what, process=self)

    def terminate(self, signum: signal.Signals = signal.SIGTERM) -> int:
        """SIGTERM (or `signum`), then the exit code; a process that ignores it is killed and the
        test fails."""
        return self._signal_and_wait(signum, DEADLINE)

    def kill(self) -> int:
        """SIGKILL: the process gets no chance to clean up, as after a crash of the machine."""
        return self._signal_and_wait(signal.SIGKILL, DEADLINE)

    def _signal_and_wait(self, signum: signal.Signals, deadline: float) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signum)
        try:
            return self.popen.wait(deadline)
        except subprocess.TimeoutExpired:
            self.close()
            raise AssertionError(
                f"{self.name} did not exit within {deadline:.0f} s of {signum.name}:\n"
                f"{self.output()}"
            ) from None

    def close(self) -> None:
        """Kill the process if it still runs and release its log file."""
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()
        self._log.close()


class MockProcess(Spawned):
    """`streamer mock-exchange` on a free port; its URLs are read from its first lines."""

    def __init__(self, log_path: Path, speed: float) -> None:
        super().__init__(
            "mock-exchange",
            ["mock-exchange", "--port", "0", "--speed", str(speed)],
            log_path,
        )
        self.rest_url = ""
        self.ws_url = ""

    def wait_listening(self) -> MockProcess:
        """Wait for the lines that say where the mock listens."""
        self.rest_url = self.wait_output(r"REST:\s+(\S+)", "mock exchange REST URL").group(1)
        self.ws_url = self.wait_output(r"WS:\s+(\S+)", "mock exchange websocket URL").group(1)
        return self


class ServiceProcess(Spawned):
    """`streamer run` against a mock exchange; `base_url` is known once its API listens."""

    def __init__(
        self,
        log_path: Path,
        *,
        database_url: str,
        mock: MockProcess,
        port: int = 0,
        host: str = "127.0.0.1",
        args: Sequence[str] = (),
    ) -> None:
        super().__init__(
            "streamer run",
            [
                "run",
                "--database-url",
                database_url,
                "--ws-url",
                mock.ws_url,
                "--rest-url",
                mock.rest_url,
                "--host",
                host,
                "--port",
                str(port),
                *args,
            ],
            log_path,
        )
        self.port = port
        self.base_url = ""

    def wait_ready(self) -> ServiceProcess:
        """Wait until the API listens and `/api/health` says ready (database and streaming)."""
        found = self.wait_output(r"API listening on (http://\S+):(\d+)", "API listening line")
        self.port = int(found.group(2))
        self.base_url = f"http://127.0.0.1:{self.port}"
        wait_for(self._ready, "ready /api/health", process=self)
        return self

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/api/health", timeout=5).status_code == 200
        except httpx.TransportError:
            return False


class Spawner:
    """Starts `streamer` processes and kills every one of them when closed, whatever happened."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._spawned: list[Spawned] = []

    def _log(self, stem: str) -> Path:
        return self.folder / f"{stem}-{len(self._spawned)}.log"

    def mock(self, speed: float = 200.0) -> MockProcess:
        """A mock exchange process, listening."""
        mock = MockProcess(self._log("mock-exchange"), speed)
        self._spawned.append(mock)
        return mock.wait_listening()

    def service(
        self,
        *,
        database_url: str,
        mock: MockProcess,
        port: int = 0,
        host: str = "127.0.0.1",
        args: Sequence[str] = (),
    ) -> ServiceProcess:
        """A `streamer run` process, started; `wait_ready()` waits until it serves; `args`
        are further flags of `run`. Its journal is in this test's folder, one per instance id,
        so a restarted instance finds its own again."""
        args = list(args)
        if "--journal-dir" not in args:
            name = args[args.index("--instance-id") + 1] if "--instance-id" in args else "default"
            args += ["--journal-dir", str(self.folder / f"journal-{name}")]
        service = ServiceProcess(
            self._log("service"),
            database_url=database_url,
            mock=mock,
            port=port,
            host=host,
            args=args,
        )
        self._spawned.append(service)
        return service

    def close(self) -> None:
        for process in reversed(self._spawned):
            process.close()
        self._spawned.clear()


@dataclass(frozen=True)
class CliResult:
    """What one `streamer` command printed and how it exited."""

    code: int
    stdout: str
    stderr: str


def run_cli(*args: str) -> CliResult:
    """Run one `streamer` command to its end (bounded) and return its output."""
    done = subprocess.run(
        [str(STREAMER), *args],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=DEADLINE * 2,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


def symbol_state(base_url: str, symbol: str) -> dict[str, Any]:
    """One symbol's live state from a running service's API."""
    response = httpx.get(f"{base_url}/api/settings/{symbol}", timeout=10)
    response.raise_for_status()
    state: dict[str, Any] = response.json()
    return state


def wait_trades_advance(service: ServiceProcess, symbols: list[str]) -> dict[str, int]:
    """Wait until each symbol streams and its last trade id moves on; returns the newest ids."""
    newest: dict[str, int] = {}
    for symbol in symbols:

        def first_id(symbol: str = symbol) -> int | None:
            state = symbol_state(service.base_url, symbol)
            if state["state"] != "streaming":
                return None
            last: int | None = state["last_trade_id"]
            return last

        seen = wait_for(first_id, f"{symbol} streaming with a trade", process=service)

        def later_id(symbol: str = symbol, seen: int = seen) -> int | None:
            last = first_id(symbol)
            return last if last is not None and last > seen else None

        newest[symbol] = wait_for(later_id, f"{symbol} trade after id {seen}", process=service)
    return newest
