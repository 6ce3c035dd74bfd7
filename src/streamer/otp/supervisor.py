"""A supervisor over a list of children (OTP's supervisor), with the three strategies.

Besides the children it starts with, it takes OTP's runtime API: `start_child` appends a
child, `terminate_child` stops one and keeps its spec, `restart_child` starts a stopped one
again, `delete_child` forgets a stopped one. These calls are queued to the supervisor's own
task, as OTP's are, so they never interleave with a restart in progress.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from streamer.otp.base import BaseSupervisor
from streamer.otp.child import Child, ChildState
from streamer.otp.errors import (
    AlreadyPresent,
    AlreadyStarted,
    ChildNotFound,
    ChildRestarting,
    ChildRunning,
    StartError,
    SupervisorNotRunning,
)
from streamer.otp.spec import ChildSpec, Restart, Strategy

log = logging.getLogger("streamer.otp")

_IDLE = (ChildState.STOPPED, ChildState.IGNORED)
"""States in which a kept child has no task at all: restartable, deletable."""


class Supervisor(BaseSupervisor):
    """Starts its children in order, restarts them by `strategy`, stops them in reverse order.

    Every `run()` creates the children afresh from the specs it was built with, so a
    supervisor restarted by its parent comes back exactly as it first started (children added
    with `start_child` are not part of that, as in OTP, where `init/1` runs again).
    """

    def __init__(
        self,
        children: Sequence[ChildSpec],
        *,
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        name: str = "supervisor",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(max_restarts=max_restarts, max_seconds=max_seconds, name=name, clock=clock)
        ids = [spec.id for spec in children]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"supervisor {name!r}: duplicate child ids {duplicates}")
        self.specs = tuple(children)
        self.strategy = Strategy(strategy)
        self._list: list[Child] = []

    async def start_child(self, spec: ChildSpec) -> Child:
        """Add a child after the others and start it; its handle once it called `started()`.

        A child that raises `Ignore` instead is kept, stopped, in state `ignored` (unless
        temporary: then it is dropped), as OTP's `{ok, undefined}`. Raises AlreadyStarted if a
        live child has that id, AlreadyPresent if a stopped one has, StartError if it did not
        come up (its spec is then dropped).
        """
        try:
            return await self._call(lambda: self._add(spec))
        except SupervisorNotRunning as error:
            raise StartError(spec.id, error) from error

    async def terminate_child(self, id: str) -> None:
        """Shut the child down and keep its spec, so it can be restarted (temporary: dropped).

        It stays stopped until `restart_child`, or until a sibling's restart under
        `one_for_all`/`rest_for_one` starts it with the others, as in OTP. ChildNotFound if no
        child has that id.
        """
        await self._call(lambda: self._terminate(id))

    async def restart_child(self, id: str) -> Child:
        """Start a stopped (terminated, ignored, or transient and exited) child again.

        Raises ChildRunning if it runs (an abandoned child still does), ChildRestarting if its
        supervisor is about to restart it, ChildNotFound if no child has that id, StartError
        if it did not come up (its spec is kept). Does not count toward the restart intensity.
        """
        return await self._call(lambda: self._restart_by_request(id))

    async def delete_child(self, id: str) -> None:
        """Forget a stopped child's spec; ChildRunning, ChildRestarting or ChildNotFound if not."""
        await self._call(lambda: self._delete(id))

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": "supervisor",
            "strategy": str(self.strategy),
            "state": str(self._state),
            "max_restarts": self.max_restarts,
            "max_seconds": self.max_seconds,
            "recent_restarts": self.recent_restarts(),
            "children": [child.describe() for child in self._list],
        }

    async def _add(self, spec: ChildSpec) -> Child:
        existing = self._find(spec.id)
        if existing is not None:
            if existing.state in _IDLE:
                raise AlreadyPresent(existing)
            raise AlreadyStarted(spec.id, spec.id, existing, what="id")
        child = Child(spec, self.name)
        self._list.append(child)
        try:
            started = await child._start(self._on_exit)
        except BaseException:
            self._list.remove(child)
            raise
        if not started:
            self._ended_for_good(child)
        return child

    async def _terminate(self, id: str) -> None:
        child = self._get(id)
        self._restarting.discard(child)
        await child._shutdown()
        child._release_name()
        if child.spec.restart is Restart.TEMPORARY:
            self._list.remove(child)

    async def _restart_by_request(self, id: str) -> Child:
        child = self._idle(id)
        child.restarts += 1
        if not await child._start(self._on_exit):
            self._ended_for_good(child)
        return child

    async def _delete(self, id: str) -> None:
        self._list.remove(self._idle(id))

    def _find(self, id: str) -> Child | None:
        return next((child for child in self._list if child.id == id), None)

    def _get(self, id: str) -> Child:
        child = self._find(id)
        if child is None:
            raise ChildNotFound(f"{id!r} is not a child of {self.name!r}")
        return child

    def _idle(self, id: str) -> Child:
        """The child `id`, which must have no task: OTP's `running`/`restarting` otherwise."""
        child = self._get(id)
        if child in self._restarting:
            raise ChildRestarting(child)
        if child.state not in _IDLE:
            raise ChildRunning(child)
        return child

    def _children(self) -> list[Child]:
        return self._list

    def _holds(self, child: Child) -> bool:
        return any(c is child for c in self._list)

    def _ended_for_good(self, child: Child) -> None:
        if child.spec.restart is Restart.TEMPORARY:
            self._list.remove(child)

    async def _start_children(self) -> None:
        self._list = []
        for spec in self.specs:
            child = Child(spec, self.name)
            self._list.append(child)
            try:
                started = await child._start(self._on_exit)
            except Exception as exc:
                log.error("%s: child %s failed to start: %r", self.name, child.id, exc)
                raise
            if not started:
                self._ended_for_good(child)

    async def _restart(self, child: Child) -> None:
        index = self._list.index(child)
        if self.strategy is Strategy.ONE_FOR_ONE:
            group = [child]
        elif self.strategy is Strategy.ONE_FOR_ALL:
            group = list(self._list)
        else:
            group = self._list[index:]
        for sibling in reversed(group):
            if sibling is not child:
                await self._stop_sibling(sibling)
        for member in group:
            if not self._holds(member) or member.state not in _IDLE:
                continue
            if not await self._restart_one(member):
                return

    async def _stop_sibling(self, sibling: Child) -> None:
        if sibling.task is not None:
            log.info("%s: stopping child %s to restart it with a sibling", self.name, sibling.id)
            await sibling._shutdown()
        if sibling.spec.restart is Restart.TEMPORARY:
            self._list.remove(sibling)
        elif sibling.state is ChildState.ABANDONED:
            sibling._resume_when_ended()

    async def _stop_children(self) -> None:
        for child in reversed(self._list):
            if child.task is not None:
                log.debug("%s: shutting down child %s", self.name, child.id)
                await child._shutdown()
            child._release_name()
