"""run_application: graceful stop on a signal, 130 when insisted; 1 and a reason on failure."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from streamer.otp import ChildSpec, Started, Supervisor, run_application
from tests.otp.probes import Probe


@pytest.fixture(autouse=True)
def signal_handlers() -> Iterator[None]:
    """Put the test process's own SIGINT/SIGTERM handling back after each test."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_signal_stops_the_tree_in_reverse_order_and_exits_zero(signum: int) -> None:
    """SIGINT or SIGTERM stops every child, last started first, and the exit code is 0."""
    probe = Probe()
    root = Supervisor([probe.spec("a"), probe.spec("b")], name="root")
    app = asyncio.create_task(run_application(root))
    await probe.wait_for("start:b")
    os.kill(os.getpid(), signum)
    assert await app == 0
    assert probe.log == ["start:a", "start:b", "stop:b", "stop:a"]


async def test_root_escalation_exits_one_with_a_reason(caplog: pytest.LogCaptureFixture) -> None:
    """A root that exceeds its restart intensity ends the application with 1 and says why."""

    async def crashes(started: Started) -> None:
        started()
        raise RuntimeError("disk full")

    root = Supervisor([ChildSpec("writer", crashes)], max_restarts=0, name="root")
    assert await run_application(root) == 1
    failures = [r for r in caplog.records if "application failed" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].levelno == logging.ERROR
    assert "root" in failures[0].getMessage()
    assert "disk full" in failures[0].getMessage()


async def test_root_start_failure_exits_one(caplog: pytest.LogCaptureFixture) -> None:
    """A root whose child cannot start ends the application with 1 and names the child."""

    async def broken(started: Started) -> None:
        raise ConnectionRefusedError("database down")

    assert await run_application(Supervisor([ChildSpec("repo", broken)])) == 1
    failures = [r.getMessage() for r in caplog.records if "application failed" in r.getMessage()]
    assert failures
    assert "repo" in failures[0]
    assert "database down" in failures[0]


STUBBORN = """
import asyncio, logging, sys
from streamer.otp import ChildSpec, Supervisor, run_application

async def stubborn(started):
    started()
    print("running", flush=True)
    try:
        await asyncio.Future()
    except asyncio.CancelledError:
        print("stopping slowly", flush=True)
        await asyncio.sleep(60)

logging.basicConfig(level=logging.INFO, stream=sys.stdout)
root = Supervisor([ChildSpec("stubborn", stubborn, shutdown=None)], name="root")
sys.exit(asyncio.run(run_application(root)))
"""


def test_a_second_signal_exits_at_once_with_130() -> None:
    """Ctrl-C twice ends the process without waiting for a child that is slow to stop."""
    with subprocess.Popen(
        [sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            lines = iter(process.stdout.readline, "")
            assert next(line for line in lines if "running" in line)
            process.send_signal(signal.SIGINT)
            assert next(line for line in lines if "stopping slowly" in line)
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=30) == 130
            assert "exiting now" in process.stdout.read()
        finally:
            process.kill()


SLOW_TEARDOWN = """
import asyncio, logging, sys, time
from streamer.otp import ChildSpec, Supervisor, run_application

async def worker(started):
    started()
    print("running", flush=True)
    await asyncio.Future()

logging.basicConfig(level=logging.INFO, stream=sys.stdout)
code = asyncio.run(run_application(Supervisor([ChildSpec("worker", worker)], name="root")))
print("tearing down", code, flush=True)
time.sleep(60)
sys.exit(code)
"""


@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_second_signal_during_the_final_teardown_exits_130_not_by_signal(second: int) -> None:
    """Once a signal has stopped the tree, another one while the process tears down exits with
    130 instead of killing the process by that signal."""
    with subprocess.Popen(
        [sys.executable, "-c", SLOW_TEARDOWN], stdout=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            lines = iter(process.stdout.readline, "")
            assert next(line for line in lines if "running" in line)
            process.send_signal(signal.SIGTERM)
            assert next(line for line in lines if "tearing down" in line) == "tearing down 0\n"
            process.send_signal(second)
            assert process.wait(timeout=30) == 130
            assert "exiting now" in process.stdout.read()
        finally:
            process.kill()
