"""A supervised child: the handle its supervisor keeps, and how one run of it starts and stops.

A child keeps the same handle across restarts; each start is a new "run" (one asyncio task).
Everything a run's end means (normal exit, clean `Shutdown`, `Ignore` at start, crash, shutdown
asked by the supervisor, kill) is decided here, once, in the task's done callback, and handed to
the supervisor as a `ChildExit`.

A shutdown time is a promise, as in OTP: when it is up (at once for `shutdown=0`, OTP's
`brutal_kill`), the run is killed the way Python can. OTP ends a process with `exit(Pid, kill)`,
which the process can neither trap nor delay; an asyncio task can only be cancelled, and its
`except CancelledError` and `finally` code runs when the loop next schedules it. So the kill
cancels the task again, every loop turn for up to `KILL_GRACE` seconds: the `await` its cleanup
is waiting on receives the cancellation, and the cleanup is cut short there. Only the
synchronous part of a cleanup, up to its next `await`, always runs: the one difference from
OTP that Python imposes. A run killed so is reported in OTP's words (`shutdown_error`, reason
`killed`).

A run that survives the kill too (it swallows every cancellation) is *abandoned*: it keeps its
registered name, so no second worker can take its place, and shows as `abandoned` until its
task really ends; only then is the name free again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from streamer.otp.errors import AlreadyStarted, Ignore, Shutdown, StartError
from streamer.otp.spec import ChildSpec

log = logging.getLogger("streamer.otp")

KILL_GRACE = 1.0
"""Seconds a killed run is cancelled again, every loop turn, before it is abandoned."""


class ChildState(StrEnum):
    """Where a child (or a supervisor) is in its life."""

    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    ABANDONED = "abandoned"
    """Its supervisor no longer waits for it (`shutdown=0`, or past its shutdown time), but its
    task has not ended yet; it keeps its name until it has."""
    IGNORED = "ignored"
    """It raised `Ignore` at start (OTP's `ignore`): nothing runs, its spec may be kept."""


class _Run:
    """One start of a child: its task, its handshake, and what its supervisor asked of it.

    The handshake resolves to True once the child called `started()`, False if it raised
    `Ignore` first.
    """

    __slots__ = (
        "abandoned",
        "handshake",
        "kill_reason",
        "resume",
        "shutdown_requested",
        "task",
    )

    def __init__(self, handshake: asyncio.Future[bool]) -> None:
        self.handshake = handshake
        self.task: asyncio.Task[None] | None = None
        self.shutdown_requested = False
        self.abandoned = False
        self.resume = False
        self.kill_reason: BaseException | None = None


@dataclass(frozen=True, slots=True)
class ChildExit:
    """A run that ended without its supervisor asking; `reason` is None for a normal exit.

    `resumed` marks the end of a run abandoned while a sibling's restart stopped it: the
    supervisor starts the child now, as that restart would have.
    """

    child: Child
    run: object
    reason: BaseException | None
    resumed: bool = False


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
        """End the running child with `reason`, as if its body had raised it.

        OTP's `Process.exit(pid, reason)`: its supervisor applies its restart rules, so a
        `Shutdown` reason is a clean exit and anything else a crash. Does nothing to a child
        that is not running or is already being shut down.
        """
        run = self._run
        if run is None or run.task is None or run.task.done() or run.shutdown_requested:
            return
        if run.kill_reason is None:
            run.kill_reason = reason
        run.task.cancel()

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The task of the current run, while it runs and its supervisor still waits on it."""
        run = self._run
        if run is None or run.task is None or run.task.done() or run.abandoned:
            return None
        return run.task

    def is_current(self, run: object) -> bool:
        """Whether `run` (from a `ChildExit`) is this child's latest start, not shut down since."""
        current = self._run
        return current is not None and run is current and not current.shutdown_requested

    def resumes(self, run: object) -> bool:
        """Whether `run` is this child's abandoned run, still to be followed by a new start."""
        current = self._run
        return current is not None and run is current and current.resume

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

    async def _start(self, on_exit: ExitHandler) -> bool:
        """Start a new run and return once it called `started()` (True) or raised `Ignore`.

        Raises StartError if it did not come up, and AlreadyStarted while an abandoned run of
        this very child has not ended: two runs at once are what abandonment must never allow.
        """
        previous = self._run
        if previous is not None and previous.abandoned and not _finished(previous):
            raise AlreadyStarted(self.id, self.name or self.id, self, what=self._held())
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
                run.handshake.set_result(True)

        try:
            body = self.spec.start(started)
        except Exception as exc:
            self._release_name()
            self.state = ChildState.STOPPED
            raise StartError(self.id, exc) from exc
        run.task = loop.create_task(body, name=f"{self.supervisor}/{self.id}")
        run.task.add_done_callback(lambda task: self._ended(run, task, on_exit))
        try:
            return await run.handshake
        except asyncio.CancelledError:
            await self._shutdown()
            raise

    async def _shutdown(self) -> None:
        """Cancel the current run and wait for it up to `spec.shutdown`; abandon it after that.

        Also makes any exit of the run still waiting for its supervisor stale, so a child that
        ended by itself and is then shut down is not restarted.
        """
        run = self._run
        if run is None:
            return
        run.shutdown_requested = True
        run.resume = False
        task = run.task
        if task is None or task.done() or run.abandoned:
            return
        self.state = ChildState.STOPPING
        task.cancel()
        if self.spec.shutdown != 0:
            done, _ = await asyncio.wait({task}, timeout=self.spec.shutdown)
            if done or run.abandoned:
                return
        if await _kill(task):
            if self.spec.shutdown != 0:
                log.error(
                    "%s: shutdown_error: child %s, reason killed (its cleanup outlasted its "
                    "shutdown of %ss)",
                    self.supervisor,
                    self.id,
                    self.spec.shutdown,
                )
            return
        if not run.abandoned:
            self._abandon(
                run,
                logging.ERROR,
                f"survived its kill (it swallows cancellations) {KILL_GRACE}s past its "
                f"shutdown of {self.spec.shutdown}s; abandoned it still running",
            )

    def _abandon(self, run: _Run, level: int, what: str) -> None:
        run.abandoned = True
        self.state = ChildState.ABANDONED
        _fail_handshake(run, self.id)
        log.log(
            level,
            "%s: child %s %s; it holds its %s until its task ends",
            self.supervisor,
            self.id,
            what,
            self._held(),
        )

    def _resume_when_ended(self) -> None:
        """Start this abandoned child again once its task ends (it was stopped to be restarted)."""
        if self._run is not None and self._run.abandoned:
            self._run.resume = True

    def _held(self) -> str:
        return "name" if self.name is not None else "id"

    def _release_name(self) -> None:
        """Give the registered name up: the supervisor is done with this child.

        A run that ends by itself keeps the name until its supervisor has decided: through a
        restart the name never lapses, so a lookup cannot miss a child about to come back. An
        abandoned run keeps it until its task has ended, so no second worker can take it.
        """
        run = self._run
        if run is not None and run.abandoned and not _finished(run):
            return
        if self.spec.name is not None:
            self.spec.name[0]._unregister(self.spec.name[1], self)

    def _ended(self, run: _Run, task: asyncio.Task[None], on_exit: ExitHandler) -> None:
        reason: BaseException | None
        if task.cancelled():
            reason = (
                None
                if run.shutdown_requested
                else asyncio.CancelledError(f"{self.id!r} was cancelled outside its supervisor")
            )
        else:
            reason = task.exception()
        if self._run is not run:
            return
        if run.abandoned:
            log.log(
                logging.WARNING if self.spec.shutdown else logging.DEBUG,
                "%s: abandoned child %s has ended%s; its %s is free again",
                self.supervisor,
                self.id,
                "" if reason is None else f" raising {reason!r}",
                self._held(),
            )
            self.state = ChildState.STOPPED
            self._release_name()
            if run.resume:
                on_exit(ChildExit(self, run, reason, resumed=True))
            return
        self.state = ChildState.STOPPED
        if run.shutdown_requested:
            self._release_name()
            self._log_shut_down(reason)
            _fail_handshake(run, self.id)
            return
        if run.kill_reason is not None:
            reason = run.kill_reason
        if not run.handshake.done():
            self._release_name()
            if isinstance(reason, Ignore):
                self.state = ChildState.IGNORED
                log.info("%s: child %s chose not to start: %s", self.supervisor, self.id, reason)
                run.handshake.set_result(False)
                return
            if reason is None:
                reason = RuntimeError("its body returned before it called started()")
            run.handshake.set_exception(StartError(self.id, reason))
            return
        self._log_exit(reason)
        on_exit(ChildExit(self, run, reason))

    def _log_shut_down(self, reason: BaseException | None) -> None:
        if reason is None or isinstance(reason, asyncio.CancelledError | Shutdown):
            log.debug("%s: child %s shut down", self.supervisor, self.id)
        else:
            log.error(
                "%s: child %s raised while shutting down: %r", self.supervisor, self.id, reason
            )

    def _log_exit(self, reason: BaseException | None) -> None:
        if reason is None:
            log.debug("%s: child %s exited normally", self.supervisor, self.id)
        elif isinstance(reason, Shutdown):
            log.info("%s: child %s exited: %s", self.supervisor, self.id, reason)
        else:
            log.error(
                "%s: child %s crashed: %r",
                self.supervisor,
                self.id,
                reason,
                exc_info=(type(reason), reason, reason.__traceback__),
            )

    def __repr__(self) -> str:
        return f"<Child {self.id!r} {self.state} restarts={self.restarts}>"


def _finished(run: _Run) -> bool:
    return run.task is None or run.task.done()


async def _kill(task: asyncio.Task[None]) -> bool:
    """Cancel `task` again every loop turn for up to `KILL_GRACE` seconds; True once it ended.

    Each cancellation reaches whatever the task's cleanup awaits, so a cleanup that awaits is
    cut short at that `await`; a task that swallows each one outlives the grace.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + KILL_GRACE
    while not task.done():
        if loop.time() >= deadline:
            return False
        task.cancel()
        await asyncio.wait({task}, timeout=0.001)
    return True


def _fail_handshake(run: _Run, child_id: str) -> None:
    if not run.handshake.done():
        run.handshake.set_exception(
            StartError(child_id, asyncio.CancelledError("shut down while starting"))
        )
