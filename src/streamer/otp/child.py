"""A supervised child: the handle its supervisor keeps, and how one run of it starts and stops.

A child keeps the same handle across restarts; each start is a new "run" (one asyncio task).
Everything a run's end means (normal exit, crash, shutdown asked by the supervisor, kill) is
decided here, once, in the task's done callback, and handed to the supervisor as a `ChildExit`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from streamer.otp.errors import StartError
from streamer.otp.spec import ChildSpec

log = logging.getLogger("streamer.otp")


class ChildState(StrEnum):
    """Where a child (or a supervisor) is in its life."""

    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


class _Run:
    """One start of a child: its task, its handshake, and what its supervisor asked of it."""

    __slots__ = ("abandoned", "handshake", "kill_reason", "shutdown_requested", "task")

    def __init__(self, handshake: asyncio.Future[None]) -> None:
        self.handshake = handshake
        self.task: asyncio.Task[None] | None = None
        self.shutdown_requested = False
        self.abandoned = False
        self.kill_reason: BaseException | None = None


@dataclass(frozen=True, slots=True)
class ChildExit:
    """A run that ended without its supervisor asking; `reason` is None for a normal exit."""

    child: Child
    run: object
    reason: BaseException | None


ExitHandler = Callable[[ChildExit], None]


class Child:
    """Live handle of a supervised child; it survives the child's restarts.

    `id` and `name` come from its spec, `supervisor` is its supervisor's name, `state` and
    `started_at` describe the current run, `restarts` counts the runs after the first.
    """

    __slots__ = ("_run", "id", "name", "restarts", "spec", "started_at", "state", "supervisor")

    def __init__(self, spec: ChildSpec, supervisor: str) -> None:
        self.spec = spec
        self.id = spec.id
        self.name = spec.name[1] if spec.name is not None else None
        self.supervisor = supervisor
        self.state = ChildState.STOPPED
        self.restarts = 0
        self.started_at: datetime | None = None
        self._run: _Run | None = None

    def kill(self, reason: BaseException) -> None:
        """Crash the running child with `reason`, as if its body had raised it.

        OTP's `Process.exit(pid, reason)`: its supervisor sees a crash and applies its restart
        rules. Does nothing to a child that is not running or is already being shut down.
        """
        run = self._run
        if run is None or run.task is None or run.task.done() or run.shutdown_requested:
            return
        if run.kill_reason is None:
            run.kill_reason = reason
        run.task.cancel()

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The task of the current run, while it has not ended."""
        run = self._run
        if run is None or run.task is None or run.task.done() or run.abandoned:
            return None
        return run.task

    def is_current(self, run: object) -> bool:
        """Whether `run` (from a `ChildExit`) is this child's latest start."""
        return run is self._run

    def describe(self) -> dict[str, Any]:
        """The child as plain data, with its own subtree if it is a supervisor."""
        data: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "type": str(self.spec.type),
            "restart": str(self.spec.restart),
            "state": str(self.state),
            "restarts": self.restarts,
            "started_at": self.started_at.isoformat() if self.started_at else None,
        }
        if self.spec.describe is not None:
            data["supervisor"] = self.spec.describe()
        return data

    async def _start(self, on_exit: ExitHandler) -> None:
        """Start a new run and return once it called `started()`; StartError if it did not."""
        loop = asyncio.get_running_loop()
        run = _Run(loop.create_future())
        registry_name = self.spec.name
        if registry_name is not None:
            registry_name[0]._register(registry_name[1], self)
        self._run = run
        self.state = ChildState.STARTING
        self.started_at = None

        def started() -> None:
            if self._run is run and not run.handshake.done() and not run.shutdown_requested:
                self.state = ChildState.RUNNING
                self.started_at = datetime.now(UTC)
                run.handshake.set_result(None)

        try:
            body = self.spec.start(started)
        except Exception as exc:
            self._release_name()
            self.state = ChildState.STOPPED
            raise StartError(self.id, exc) from exc
        run.task = loop.create_task(body, name=f"{self.supervisor}/{self.id}")
        run.task.add_done_callback(lambda task: self._ended(run, task, on_exit))
        try:
            await run.handshake
        except asyncio.CancelledError:
            await self._shutdown()
            raise

    async def _shutdown(self) -> None:
        """Cancel the current run and wait for it up to `spec.shutdown`; abandon it after that."""
        run = self._run
        if run is None or run.task is None or run.task.done() or run.abandoned:
            return
        run.shutdown_requested = True
        self.state = ChildState.STOPPING
        run.task.cancel()
        done, _ = await asyncio.wait({run.task}, timeout=self.spec.shutdown)
        if done or run.abandoned:
            return
        run.abandoned = True
        log.error(
            "%s: child %s did not stop within %ss of its shutdown; abandoned it still running",
            self.supervisor,
            self.id,
            self.spec.shutdown,
        )
        if self._run is run:
            self._release_name()
            self.state = ChildState.STOPPED

    def _release_name(self) -> None:
        """Give the registered name up: the supervisor is done with this child.

        A run that ends by itself keeps the name until its supervisor has decided: through a
        restart the name never lapses, so a lookup cannot miss a child about to come back.
        """
        if self.spec.name is not None:
            self.spec.name[0]._unregister(self.spec.name[1], self)

    def _ended(self, run: _Run, task: asyncio.Task[None], on_exit: ExitHandler) -> None:
        reason: BaseException | None
        if task.cancelled():
            reason = asyncio.CancelledError(f"{self.id!r} was cancelled outside its supervisor")
        else:
            reason = task.exception()
        if run.abandoned:
            log.warning("%s: abandoned child %s ended: %r", self.supervisor, self.id, reason)
            return
        if self._run is not run:
            return
        self.state = ChildState.STOPPED
        if run.shutdown_requested or not run.handshake.done():
            self._release_name()
        if run.shutdown_requested:
            if reason is not None and not isinstance(reason, asyncio.CancelledError):
                log.error(
                    "%s: child %s raised while shutting down: %r", self.supervisor, self.id, reason
                )
            else:
                log.debug("%s: child %s shut down", self.supervisor, self.id)
            if not run.handshake.done():
                run.handshake.set_exception(
                    StartError(self.id, asyncio.CancelledError("shut down while starting"))
                )
            return
        if run.kill_reason is not None:
            reason = run.kill_reason
        if not run.handshake.done():
            if reason is None:
                reason = RuntimeError("its body returned before it called started()")
            run.handshake.set_exception(StartError(self.id, reason))
            return
        if reason is None:
            log.debug("%s: child %s exited normally", self.supervisor, self.id)
        else:
            log.error(
                "%s: child %s crashed: %r",
                self.supervisor,
                self.id,
                reason,
                exc_info=(type(reason), reason, reason.__traceback__),
            )
        on_exit(ChildExit(self, run, reason))

    def __repr__(self) -> str:
        return f"<Child {self.id!r} {self.state} restarts={self.restarts}>"
