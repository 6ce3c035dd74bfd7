"""What every supervisor shares: its run loop, restart intensity, escalation and stopping.

A supervisor's own task is the only one that restarts children: exits arrive on a queue from
the children's done callbacks and are handled one at a time, in order, as an OTP supervisor
handles its EXIT messages. The static supervisor's runtime API (start, terminate, restart,
delete) is queued there too, as OTP's calls are, so it never interleaves with a restart.
Starting a child may happen in a caller's task (DynamicSupervisor.start_child), which is why
every handler re-checks that an exit is current.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from streamer.otp.child import Child, ChildExit, ChildState
from streamer.otp.errors import Shutdown, SupervisorFailed, SupervisorNotRunning
from streamer.otp.intensity import RestartIntensity
from streamer.otp.spec import ChildSpec, ChildType, Restart, Started

log = logging.getLogger("streamer.otp")

T = TypeVar("T")


def should_restart(restart: Restart, reason: BaseException | None) -> bool:
    """OTP's rule: permanent always, transient only after a crash, temporary never.

    A normal exit (None) and a `Shutdown` (OTP's `shutdown` and `{shutdown, term}`) are not
    crashes.
    """
    if restart is Restart.PERMANENT:
        return True
    if restart is Restart.TRANSIENT:
        return reason is not None and not isinstance(reason, Shutdown)
    return False


@dataclass(frozen=True, slots=True)
class _Call:
    """A runtime API request, answered by the supervisor's task in turn (OTP's `call`)."""

    action: Callable[[], Awaitable[Any]]
    reply: asyncio.Future[Any]


class BaseSupervisor(ABC):
    """Runs children, restarts them by its rules, and fails when they fail too often."""

    def __init__(
        self,
        *,
        max_restarts: int,
        max_seconds: float,
        name: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.max_restarts = max_restarts
        self.max_seconds = max_seconds
        self._clock = clock
        self._intensity = RestartIntensity(max_restarts, max_seconds, clock)
        self._state = ChildState.STOPPED
        self._events: asyncio.Queue[ChildExit | _Call | asyncio.Future[None]] = asyncio.Queue()
        self._restarting: set[Child] = set()
        self._task: asyncio.Task[Any] | None = None
        self._stop_requested = False
        self._finished = asyncio.Event()

    @property
    def state(self) -> ChildState:
        return self._state

    def child_spec(self, id: str | None = None, restart: Restart = Restart.PERMANENT) -> ChildSpec:
        """This supervisor as a child of another; each start of it begins afresh."""
        return ChildSpec(
            id=id or self.name,
            start=self.run,
            restart=restart,
            shutdown=None,
            type=ChildType.SUPERVISOR,
            describe=self.describe,
        )

    async def run(self, started: Started | None = None) -> None:
        """Start the children, call `started()`, then supervise until `stop()` or failure.

        Raises StartError if a child failed to start (the ones already started are stopped
        first) and SupervisorFailed once the restart intensity is exceeded (after stopping all
        children). Cancelling it stops all children, then lets the cancellation through.
        """
        if self._state is not ChildState.STOPPED:
            raise RuntimeError(f"supervisor {self.name!r} is already running")
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError(f"supervisor {self.name!r} must run inside an asyncio task")
        self._task = task
        self._intensity = RestartIntensity(self.max_restarts, self.max_seconds, self._clock)
        self._events = asyncio.Queue()
        self._restarting = set()
        self._stop_requested = False
        self._finished = asyncio.Event()
        self._state = ChildState.STARTING
        try:
            await self._start_children()
            self._state = ChildState.RUNNING
            log.info("%s: started", self.name)
            if started is not None:
                started()
            await self._supervise()
        except asyncio.CancelledError:
            # stop() asks by cancelling, so that it also interrupts a start or restart that is
            # waiting for a child's handshake; only that one cancellation is absorbed.
            if not self._stop_requested or task.uncancel() > 0:
                raise
        finally:
            self._state = ChildState.STOPPING
            children = self.which_children()
            await self._stop_children_to_the_end()
            self._state = ChildState.STOPPED
            self._release_waiters()
            self._finished.set()
            abandoned = [c.id for c in children if c.state is ChildState.ABANDONED]
            if abandoned:
                log.error(
                    "%s: stopped, abandoning %s still running (deaf to their kill)",
                    self.name,
                    ", ".join(abandoned),
                )
            else:
                log.info("%s: stopped", self.name)

    async def stop(self) -> None:
        """Stop every child (see the subclass for the order) and make `run()` return."""
        if self._state is ChildState.STOPPED:
            return
        if not self._stop_requested and self._state is not ChildState.STOPPING:
            self._stop_requested = True
            if self._task is not None:
                self._task.cancel()
        await self._finished.wait()

    async def sync(self) -> None:
        """Return once every child exit that reached this supervisor before the call is handled.

        The asyncio form of OTP's `sys:get_state/1` round trip: after a child's task has ended,
        `await sup.sync()` guarantees its supervisor has restarted it (or decided not to).
        """
        if self._state is ChildState.STOPPED:
            return
        marker: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._events.put_nowait(marker)
        await marker

    def recent_restarts(self) -> int:
        """Restarts still inside the intensity window: how close this supervisor is to failing."""
        return self._intensity.recent()

    def which_children(self) -> list[Child]:
        """The children's handles, in start order (a child added later comes last).

        OTP's `which_children/1` does not document an order and in fact lists the children
        last started first; start order is what `describe()` and the status views show.
        """
        return list(self._children())

    def count_children(self) -> dict[str, int]:
        """OTP's count_children: specs (children known), active (running), supervisors, workers."""
        children = self._children()
        supervisors = sum(1 for c in children if c.spec.type is ChildType.SUPERVISOR)
        return {
            "specs": len(children),
            "active": sum(1 for c in children if c.state is ChildState.RUNNING),
            "supervisors": supervisors,
            "workers": len(children) - supervisors,
        }

    async def _call(self, action: Callable[[], Awaitable[T]]) -> T:
        """Run `action` in this supervisor's task, after every exit already reported to it."""
        if self._state not in (ChildState.STARTING, ChildState.RUNNING):
            raise SupervisorNotRunning(f"supervisor {self.name!r} is not running")
        reply: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._events.put_nowait(_Call(action, reply))
        return await reply

    async def _answer(self, call: _Call) -> None:
        """Run one call; its errors go to the caller, they are not failures of the supervisor."""
        try:
            result = await call.action()
        except Exception as exc:
            if not call.reply.done():
                call.reply.set_exception(exc)
        else:
            if not call.reply.done():
                call.reply.set_result(result)
        finally:
            if not call.reply.done():
                call.reply.set_exception(self._not_running())

    def _not_running(self) -> SupervisorNotRunning:
        return SupervisorNotRunning(f"supervisor {self.name!r} stopped before it answered")

    async def _stop_children_to_the_end(self) -> None:
        """Stop all children even if this task is cancelled meanwhile, then honour the cancel.

        A supervisor must never leave children behind: a cancellation arriving while it is
        already stopping them (its parent shutting it down during an escalation, say) waits
        for the stop to complete instead of cutting it short.
        """
        stopping = asyncio.create_task(self._stop_children(), name=f"{self.name}/stopping")
        interrupted = False
        while not stopping.done():
            try:
                await asyncio.shield(stopping)
            except asyncio.CancelledError:
                interrupted = True
        stopping.result()
        if interrupted:
            raise asyncio.CancelledError

    def _release_waiters(self) -> None:
        while not self._events.empty():
            event = self._events.get_nowait()
            if isinstance(event, _Call) and not event.reply.done():
                event.reply.set_exception(self._not_running())
            elif isinstance(event, asyncio.Future) and not event.done():
                event.set_result(None)

    def _on_exit(self, exit: ChildExit) -> None:
        if exit.resumed or should_restart(exit.child.spec.restart, exit.reason):
            self._restarting.add(exit.child)
        self._events.put_nowait(exit)

    async def _supervise(self) -> None:
        while True:
            event = await self._events.get()
            if isinstance(event, ChildExit):
                await self._handle_exit(event)
            elif isinstance(event, _Call):
                if not event.reply.done():
                    await self._answer(event)
            elif not event.done():
                event.set_result(None)

    async def _handle_exit(self, exit: ChildExit) -> None:
        child = exit.child
        self._restarting.discard(child)
        if not self._holds(child):
            return
        if exit.resumed:
            if child.resumes(exit.run):
                await self._restart_one(child)
            return
        if not child.is_current(exit.run):
            return
        if not should_restart(child.spec.restart, exit.reason):
            child._release_name()
            self._ended_for_good(child)
            return
        if not self._intensity.add_restart():
            log.error(
                "%s: more than %d restarts within %ss (last: child %s, %r); "
                "stopping all children and failing",
                self.name,
                self.max_restarts,
                self.max_seconds,
                child.id,
                exit.reason,
            )
            raise SupervisorFailed(self.name, child.id, exit.reason) from exit.reason
        await self._restart(child)

    async def _restart_one(self, child: Child) -> bool:
        """Start `child` again; a failed start counts as a new crash, handled in turn.

        A child that raises `Ignore` this time is done with, as if it had exited for good.
        """
        log.info("%s: restarting child %s", self.name, child.id)
        child.restarts += 1
        try:
            started = await child._start(self._on_exit)
        except Exception as exc:
            log.error("%s: child %s failed to restart: %r", self.name, child.id, exc)
            if self._holds(child):
                self._on_exit(ChildExit(child, child._run, exc))
            return False
        if not started:
            self._ended_for_good(child)
        return True

    @abstractmethod
    def _children(self) -> list[Child]: ...

    @abstractmethod
    def _holds(self, child: Child) -> bool: ...

    @abstractmethod
    def _ended_for_good(self, child: Child) -> None:
        """A child ended and will not be restarted."""

    @abstractmethod
    async def _start_children(self) -> None: ...

    @abstractmethod
    async def _restart(self, child: Child) -> None: ...

    @abstractmethod
    async def _stop_children(self) -> None: ...

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """The subtree as plain data (str, int, float, None, lists, dicts)."""

    def __repr__(self) -> str:
        kind = type(self).__name__
        return f"<{kind} {self.name!r} {self._state} children={len(self._children())}>"
