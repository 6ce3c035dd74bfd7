"""Running a supervision tree as a program: until a signal asks it to stop, or its root fails."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from types import FrameType

from streamer.otp.errors import StartError, SupervisorFailed
from streamer.otp.supervisor import Supervisor

log = logging.getLogger("streamer.otp")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
FORCED_EXIT = 130


async def run_application(root: Supervisor) -> int:
    """Run `root` until SIGINT/SIGTERM or its failure; the result is the process exit code.

    A signal stops the tree gracefully (children in reverse order) and gives 0; the root
    failing to start or escalating gives 1, after one log line saying why. A second signal
    during the stop is a person insisting: the process exits at once with 130, without waiting
    for children that are slow to stop. That holds until the process has exited: once a
    signal has stopped the tree, a further one during the final teardown (after this returns,
    while the loop and the interpreter close) also exits with 130 instead of killing the
    process by signal. Signal handlers can only be installed from the main thread, which is
    where a program's loop runs.
    """
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()

    def on_signal(signum: int) -> None:
        if stopping.is_set():
            _exit_now(signum)
        log.info("%s received; stopping %s", signal.Signals(signum).name, root.name)
        stopping.set()

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    running = asyncio.create_task(root.run(), name=f"application/{root.name}")
    waiting = asyncio.create_task(stopping.wait(), name="application/signals")
    try:
        await asyncio.wait({running, waiting}, return_when=asyncio.FIRST_COMPLETED)
        if not running.done():
            await root.stop()
        await asyncio.wait({running})
        if running.cancelled():
            log.error("application stopped: %s was cancelled", root.name)
            return 1
        error = running.exception()
        if isinstance(error, StartError | SupervisorFailed):
            log.error("application failed: %s", error)
            return 1
        if error is not None:
            log.error("application failed: %s crashed: %r", root.name, error)
            return 1
        return 0
    finally:
        waiting.cancel()
        if not running.done():
            running.cancel()
        await asyncio.wait({running, waiting})
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
            if stopping.is_set():
                signal.signal(signum, _exit_during_teardown)


def _exit_now(signum: int) -> None:
    log.error(
        "%s received again; exiting now, without waiting for the shutdown to finish",
        signal.Signals(signum).name,
    )
    logging.shutdown()
    os._exit(FORCED_EXIT)


def _exit_during_teardown(signum: int, frame: FrameType | None) -> None:
    """Outlives the loop: the teardown after a stop may block in plain Python code."""
    _exit_now(signum)
