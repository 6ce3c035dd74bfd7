"""A supervisor over a fixed list of children (OTP's supervisor), with the three strategies."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from streamer.otp.base import BaseSupervisor
from streamer.otp.child import Child, ChildState
from streamer.otp.spec import ChildSpec, Restart, Strategy

log = logging.getLogger("streamer.otp")


class Supervisor(BaseSupervisor):
    """Starts its children in order, restarts them by `strategy`, stops them in reverse order.

    Every `run()` creates the children afresh from their specs, so a supervisor restarted by
    its parent comes back exactly as it first started.
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
                await child._start(self._on_exit)
            except Exception as exc:
                log.error("%s: child %s failed to start: %r", self.name, child.id, exc)
                raise

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
            if not self._holds(member) or member.state is not ChildState.STOPPED:
                continue
            if not await self._restart_one(member):
                return

    async def _stop_sibling(self, sibling: Child) -> None:
        if sibling.task is not None:
            log.info("%s: stopping child %s to restart it with a sibling", self.name, sibling.id)
            await sibling._shutdown()
        if sibling.spec.restart is Restart.TEMPORARY:
            self._list.remove(sibling)

    async def _stop_children(self) -> None:
        for child in reversed(self._list):
            if child.task is not None:
                log.debug("%s: shutting down child %s", self.name, child.id)
                await child._shutdown()
            child._release_name()
