"""run_application: graceful stop on a signal; exit code 1 and one reason when the root fails."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys

import pytest

from streamer.otp import ChildSpec, Started, Supervisor, run_application
from tests.otp.probes import Probe


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
