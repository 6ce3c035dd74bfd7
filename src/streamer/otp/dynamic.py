"""A supervisor of children started on demand (Elixir's DynamicSupervisor): one_for_one only."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from streamer.otp.base import BaseSupervisor
from streamer.otp.child import Child
from streamer.otp.errors import (
    ChildNotFound,
    MaxChildrenReached,
    StartError,
    SupervisorNotRunning,
)
from streamer.otp.spec import ChildSpec

log = logging.getLogger("streamer.otp")


class DynamicSupervisor(BaseSupervisor):
    """Starts empty; children come and go with `start_child` and `terminate_child`.

    A child that ends and is not restarted is forgotten. On stop, all children are shut down
    at once, since they are independent of each other. Restarted by its parent, it comes back
    empty: whoever started the children is expected to start them again.
    """

    def __init__(
        self,
        *,
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        max_children: int | None = None,
        name: str = "dynamic_supervisor",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(max_restarts=max_restarts, max_seconds=max_seconds, name=name, clock=clock)
        if max_children is not None and max_children < 0:
            raise ValueError(f"max_children must be >= 0 or None, got {max_children}")
        self.max_children = max_children
        self._dict: dict[Child, None] = {}
        self._accepting = False

    async def start_child(self, spec: ChildSpec) -> Child:
        """Start a child and return its handle once it called `started()`.

        A child that raised `Ignore` instead is not kept: its handle comes back in state
        `ignored` (Elixir's `:ignore`). Raises StartError with the reason if it did not come
        up, AlreadyStarted (carrying the live child) if its name is taken, MaxChildrenReached
        when full.
        """
        if not self._accepting:
            raise StartError(
                spec.id, SupervisorNotRunning(f"supervisor {self.name!r} is not running")
            )
        if self.max_children is not None and len(self._dict) >= self.max_children:
            raise MaxChildrenReached(spec.id, self.max_children)
        child = Child(spec, self.name)
        self._dict[child] = None
        try:
            started = await child._start(self._on_exit)
        except BaseException:
            self._dict.pop(child, None)
            raise
        if not started:
            self._dict.pop(child, None)
        return child

    async def terminate_child(self, child: Child) -> None:
        """Shut the child down without restarting it and forget it.

        A child that is not (or no longer) here raises ChildNotFound: Elixir's
        `{:error, :not_found}` as an exception, so that a stop that found nothing to stop
        cannot pass unnoticed.
        """
        if child not in self._dict:
            raise ChildNotFound(f"{child.id!r} is not a child of {self.name!r}")
        del self._dict[child]
        log.debug("%s: terminating child %s", self.name, child.id)
        await child._shutdown()
        child._release_name()

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": "dynamic_supervisor",
            "state": str(self._state),
            "max_restarts": self.max_restarts,
            "max_seconds": self.max_seconds,
            "recent_restarts": self.recent_restarts(),
            "max_children": self.max_children,
            "children": [child.describe() for child in list(self._dict)],
        }

    def _children(self) -> list[Child]:
        return list(self._dict)

    def _holds(self, child: Child) -> bool:
        return child in self._dict

    def _ended_for_good(self, child: Child) -> None:
        self._dict.pop(child, None)

    async def _start_children(self) -> None:
        self._dict = {}
        self._accepting = True

    async def _restart(self, child: Child) -> None:
        await self._restart_one(child)

    async def _stop_children(self) -> None:
        self._accepting = False
        children = list(self._dict)
        if children:
            log.debug("%s: shutting down %d children", self.name, len(children))
            await asyncio.gather(*(child._shutdown() for child in children))
        for child in children:
            child._release_name()
        self._dict.clear()
