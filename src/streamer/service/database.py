"""The `database` child: migrates the settings database, keeps stream positions in it, owns the
engine.

It reports started at once, so the API comes up and answers "live, not ready" while the
database is down; autostart waits for `ready` instead. Before that is set, the saved positions
seed the streams, so symbols that streamed before a stop or a crash of the process back-fill
what they missed (or report it lost) instead of starting anywhere.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from streamer.db import DatabaseUnavailable, SettingsRepository, create_engine, upgrade
from streamer.otp import ChildSpec, Started

log = logging.getLogger(__name__)

RETRY_CAP = 30.0
PROBE_SECONDS = 5.0


class Database:
    """The engine, the repository over it, and whether the database answers (`ready`).

    `positions` gives the resume points to save; None when leases' owners save them instead
    (a group of instances on PostgreSQL, fenced by epoch). `resume` receives the saved ones once
    the database first answers.
    """

    def __init__(
        self,
        url: str,
        *,
        resume: Callable[[Mapping[str, int]], None],
        positions: Callable[[], Mapping[str, int]] | None,
        retry: float = 1.0,
        probe: float = PROBE_SECONDS,
    ) -> None:
        self.url = url
        self.engine = create_engine(url)
        self.repository = SettingsRepository(self.engine)
        self.ready = asyncio.Event()
        self.reached = asyncio.Event()
        """Set for good once the database was migrated and the saved positions loaded: what
        the streams wait for, so that a later outage (`ready` cleared) stops none."""
        self._resume = resume
        self._positions = positions
        self._retry = retry
        self._probe = probe

    def child_spec(self) -> ChildSpec:
        return ChildSpec(id="database", start=self._run)

    async def _run(self, started: Started) -> None:
        started()
        delay = self._retry
        while True:
            try:
                await upgrade(self.url)
                positions = await self.repository.positions()
                break
            except DatabaseUnavailable as error:
                log.warning("Waiting for the database: %s; retrying in %.1f s", error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_CAP)
        self._resume(positions)
        self.ready.set()
        self.reached.set()
        try:
            await self._watch()
        finally:
            self.ready.clear()
            await self._save_at_stop()
            await self.engine.dispose()

    async def _save_at_stop(self) -> None:
        """The last save, after the streams have stopped (this child stops last).

        In a group the leases' owners save, fenced by epoch, and the drain did the last save."""
        if self._positions is None:
            return
        try:
            async with asyncio.timeout(self._probe):
                await self.repository.save_positions(self._positions())
        except (DatabaseUnavailable, TimeoutError) as error:
            log.warning(
                "Could not save stream positions (%s); the next start resumes from the last save",
                error or "timed out",
            )

    async def _watch(self) -> None:
        """Save stream positions every few seconds; the same round trip tells whether the
        database answers, so health and metrics see an outage and its end."""
        while True:
            await asyncio.sleep(self._probe)
            positions = {} if self._positions is None else self._positions()
            try:
                async with asyncio.timeout(self._probe):
                    if positions:
                        await self.repository.save_positions(positions)
                    else:
                        await self.repository.ping()
            except (DatabaseUnavailable, TimeoutError) as error:
                if self.ready.is_set():
                    log.warning("The database stopped answering: %s", error or "timed out")
                    self.ready.clear()
            else:
                if not self.ready.is_set():
                    log.info("The database answers again")
                    self.ready.set()
