"""Children whose every start and stop is recorded, and which tests can end on demand."""

from __future__ import annotations

import asyncio
from collections import Counter

from streamer.otp import Child, ChildSpec, Registry, Restart, Started
from streamer.otp.base import BaseSupervisor


async def deaf_until(release: asyncio.Event) -> None:
    """Wait for `release`, swallowing every cancellation meanwhile: a cleanup that survives
    even its kill, which only abandonment can deal with."""
    while not release.is_set():
        try:
            await release.wait()
        except asyncio.CancelledError:
            continue


class FakeClock:
    """A monotonic clock that moves only when a test sets `now`."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Probe:
    """Makes child specs whose bodies log `start:<id>` and `stop:<id>` and wait to be ended."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self._endings: dict[str, asyncio.Future[BaseException | None]] = {}
        self._changed = asyncio.Event()

    def spec(
        self,
        id: str,
        *,
        restart: Restart = Restart.PERMANENT,
        shutdown: float | None = 5.0,
        name: tuple[Registry, str] | None = None,
    ) -> ChildSpec:
        async def body(started: Started) -> None:
            ending: asyncio.Future[BaseException | None] = (
                asyncio.get_running_loop().create_future()
            )
            self._endings[id] = ending
            self._record(f"start:{id}")
            started()
            try:
                reason = await ending
            finally:
                self._record(f"stop:{id}")
            if reason is not None:
                raise reason

        return ChildSpec(id=id, start=body, restart=restart, shutdown=shutdown, name=name)

    def starts(self, id: str) -> int:
        return Counter(self.log)[f"start:{id}"]

    def exit(self, id: str) -> None:
        """Make the running child `id` return normally."""
        self._endings[id].set_result(None)

    def crash(self, id: str, reason: BaseException) -> None:
        """Make the running child `id` raise `reason` from its body."""
        self._endings[id].set_result(reason)

    async def wait_for(self, entry: str, count: int = 1) -> None:
        """Wait until `entry` has been logged `count` times."""
        while Counter(self.log)[entry] < count:
            self._changed.clear()
            await self._changed.wait()

    def _record(self, entry: str) -> None:
        self.log.append(entry)
        self._changed.set()


async def ended(child: Child) -> None:
    """Wait until the child's current run has ended and its supervisor has been told."""
    task = child.task
    if task is not None:
        await asyncio.wait({task})


async def settle(supervisor: BaseSupervisor, child: Child) -> None:
    """Wait until the child's run ended and its supervisor has fully handled that."""
    await ended(child)
    await supervisor.sync()


async def running(supervisor: BaseSupervisor) -> asyncio.Task[None]:
    """Run the supervisor in a task and return once all its initial children have started."""
    up = asyncio.Event()
    task = asyncio.create_task(supervisor.run(up.set))
    waiter = asyncio.create_task(up.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    await asyncio.wait({waiter})
    if task.done():
        task.result()
    return task
