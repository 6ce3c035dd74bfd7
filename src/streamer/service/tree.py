"""The application's supervision tree, and the service object the API and CLI work through.

    streamer (one_for_one)
    ├── database        waits for the database, migrates it, owns the engine
    ├── journal         forces the journal's appends to disk (only with sinks)
    ├── sinks           one_for_one, one child per configured sink, each a journal cursor
    ├── stream_hub      the shared exchange connections and per-symbol live stats
    ├── streaming (rest_for_one)
    │   ├── streamers   dynamic supervisor: one worker per symbol, named by its symbol
    │   └── autostart   transient: runs again whenever `streamers` is restarted
    ├── http            the API, the status page and the websocket fan-out
    └── ownership       PostgreSQL only: leases, and the running set kept equal to them

With sinks, everything the hub publishes is appended to the journal (`streamer.journal`) in the
same loop turn, encoded once; each sink reads it at its own cursor. The journal is opened
before the tree starts (another process holding it is an error at start, not an outage) and
closed after the tree has stopped.

`rest_for_one` restarts autostart after any restart of `streamers`, and autostart is transient
rather than temporary, so an empty dynamic supervisor is always refilled from the database (on
PostgreSQL: with the symbols this instance holds leases for). `ownership` stops first, so on
SIGTERM it hands its symbols over while they still stream.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from streamer.api.app import create_app
from streamer.api.models import Health, SymbolState
from streamer.api.security import check_bind
from streamer.api.server import server_spec
from streamer.binance.config import StreamerConfig
from streamer.binance.market import SpotMarket
from streamer.config import Settings, default_data_dir
from streamer.db import (
    DatabaseCorrupt,
    DatabaseUnavailable,
    Status,
)
from streamer.db.urls import is_sqlite, parse_url, sqlite_path
from streamer.events import Event
from streamer.journal import Journal, JournalError, default_journal_dir, options_for
from streamer.logs import RateLimitedLog
from streamer.otp import (
    ChildSpec,
    DynamicSupervisor,
    Registry,
    Started,
    Strategy,
    Supervisor,
    run_application,
)
from streamer.ownership import InstanceInfo, InstanceLock, LeaseStore, LeaseTimes, Ownership
from streamer.service.database import PROBE_SECONDS, Database
from streamer.service.streaming import Streaming, WorkerSpec
from streamer.service.views import Views
from streamer.sinks.runner import Sinks
from streamer.sinks.urls import sink_from_url
from streamer.stream.pubsub import PubSub
from streamer.stream.worker import StreamHub, stream_spec

log = logging.getLogger(__name__)


class Service:
    """Everything one running service holds; the root supervisor runs it."""

    def __init__(
        self,
        config: Settings,
        *,
        streamer_config: StreamerConfig | None = None,
        worker_spec: WorkerSpec | None = None,
        http: bool = True,
        on_listening: Callable[[str, int], None] | None = None,
        database_retry: float = 1.0,
        database_probe: float = PROBE_SECONDS,
    ) -> None:
        self.config = config
        self.token = config.token.get_secret_value() if config.token else None
        check_bind(config.host, self.token)
        self.database_url = config.resolved_database_url()
        self.instance_id = config.instance_id or f"{socket.gethostname()}-{os.getpid()}"
        self.address = f"{config.host}:{config.port}"
        self.started = datetime.now(UTC)
        lease_times = LeaseTimes(config.lease_ttl, config.lease_renew)
        url = parse_url(self.database_url)
        self.database = Database(
            self.database_url,
            resume=self._resume,
            # In a group (PostgreSQL) the leases' owners save the positions, fenced by epoch.
            positions=self._positions if is_sqlite(url) else None,
            retry=database_retry,
            probe=database_probe,
        )
        self.engine = self.database.engine
        self.repository = self.database.repository
        self.database_ready = self.database.ready
        self.database_reached = self.database.reached
        self.pubsub = PubSub()
        self.registry = Registry("streams")
        self.hub = StreamHub(
            SpotMarket(streamer_config or StreamerConfig.from_settings(config)),
            self.pubsub,
            registry=self.registry,
        )
        self.sinks = Sinks(
            [sink_from_url(url) for url in config.sinks],
            required=config.sink_required,
            history=lambda: self.hub.history,
            limiter=self.hub.backfills,
        )
        sqlite_file = sqlite_path(url) if is_sqlite(url) else None
        self.journal_path = config.journal_dir or default_journal_dir(
            default_data_dir(), sqlite_file, config.instance_id or socket.gethostname()
        )
        self.journal: Journal | None = None
        self._journal_errors = RateLimitedLog(log, 10.0)
        self.streamers = DynamicSupervisor(name="streamers")
        self.streaming = Streaming(
            repository=self.repository,
            supervisor=self.streamers,
            registry=self.registry,
            worker_spec=worker_spec or (lambda symbol: stream_spec(symbol, self.hub)),
            wait_ready=self.database_reached.wait,
            on_stopped=self._forget,
        )
        self.lock = InstanceLock(sqlite_file) if sqlite_file is not None else None
        self.ownership: Ownership | None = None
        if not is_sqlite(url):
            self.ownership = Ownership(
                store=LeaseStore(self.engine, self.instance_id, lease_times),
                streaming=self.streaming,
                hub=self.hub,
                registry=self.registry,
                address=lambda: self.address,
                positions=self._positions,
                wait_ready=self.database_reached.wait,
            )
            self.streaming.placement = self.ownership
        self.streaming_supervisor = Supervisor(
            [self.streamers.child_spec("streamers"), self.streaming.autostart_spec()],
            strategy=Strategy.REST_FOR_ONE,
            name="streaming",
        )
        self.views = Views(
            repository=self.repository,
            registry=self.registry,
            stats=self.hub.stats,
            sinks=self.sinks,
            streaming=self.streaming_supervisor,
            database_ready=self.database_ready,
            ownership=self.ownership,
            instance_id=self.instance_id,
            address=lambda: self.address,
            started=self.started,
        )
        children = [
            self.database.child_spec(),
            *([self._journal_spec(), self.sinks.child_spec()] if config.sinks else []),
            self.hub.child_spec(),
            self.streaming_supervisor.child_spec("streaming"),
        ]
        if http:
            children.append(
                server_spec(
                    lambda ready: create_app(self, ready),
                    config.host,
                    config.port,
                    on_listening=self._listening(on_listening),
                )
            )
        if self.ownership is not None:
            children.append(self.ownership.child_spec())
        self.root = Supervisor(children, strategy=Strategy.ONE_FOR_ONE, name="streamer")

    def _listening(self, then: Callable[[str, int], None] | None) -> Callable[[str, int], None]:
        """Record the bound address (the one other instances and the CLI show), then `then`."""

        def listening(host: str, port: int) -> None:
            self.address = f"{host}:{port}"
            if then is not None:
                then(host, port)

        return listening

    def _positions(self) -> dict[str, int]:
        """Resume points to save: with sinks, no further than the journal holds for good, so
        a start after a power cut back-fills what the journal lost."""
        positions = self.hub.positions()
        return positions if self.journal is None else self.journal.hold_back(positions)

    def _resume(self, positions: Mapping[str, int]) -> None:
        """Resume from the saved positions, or from the journal where it holds more: a process
        killed before its first save still goes on from what it journaled."""
        held = {} if self.journal is None else self.journal.synced
        for symbol, last_trade_id in {**held, **positions}.items():
            self.hub.resume_from(symbol, last_trade_id)

    def _forget(self, symbol: str) -> None:
        self.hub.forget(symbol)

    # --- the journal between the stream and the sinks --------------------------------------

    def open_journal(self) -> None:
        """Open the journal and feed it from pub/sub (only with sinks); `JournalError` if it
        cannot be opened, `JournalLocked` if another process holds it."""
        if not self.config.sinks or self.journal is not None:
            return
        journal = Journal.open(
            self.journal_path,
            options_for(self.config.journal_max_bytes, fsync=self.config.journal_fsync),
        )
        self.journal = journal
        self.sinks.attach(journal)
        self.pubsub.tap(self._append)
        self.hub.resume_floor = journal.synced.get

    def close_journal(self) -> None:
        journal, self.journal = self.journal, None
        if journal is not None:
            self.pubsub.untap(self._append)
            self.hub.resume_floor = lambda symbol: None
            journal.close()

    def _append(self, events: list[Event]) -> None:
        journal = self.journal
        if journal is None:
            return
        try:
            journal.record(events)
        except JournalError as error:
            self._journal_errors.warning(
                "%s; the sinks announce the %d events it could not take", error, len(events)
            )

    def _journal_spec(self) -> ChildSpec:
        return ChildSpec(id="journal", start=self._sync_journal)

    async def _sync_journal(self, started: Started) -> None:
        journal = self.journal
        if journal is None:
            raise JournalError("the journal was not opened before the tree started")
        started()
        try:
            await journal.run_syncer()
        finally:
            journal.sync()

    # --- the views the API shows (service/views.py) ---------------------------------------

    async def cluster(self) -> list[InstanceInfo]:
        return await self.views.cluster()

    async def symbol_states(
        self, *, status: Status | None = None, prefix: str | None = None
    ) -> list[SymbolState]:
        return await self.views.symbol_states(status=status, prefix=prefix)

    async def symbol_state(self, symbol: str) -> SymbolState:
        return await self.views.symbol_state(symbol)

    def health(self) -> Health:
        return self.views.health()

    async def run(self) -> int:
        """Run the tree until SIGINT/SIGTERM (exit code 0) or until its root fails (1).

        On SQLite it first takes the single-instance lock (`InstanceLocked` if another runs).
        An SQLite file that is not a database raises `DatabaseCorrupt` before anything starts:
        it is not an outage to wait for.
        """
        if self.lock is not None:
            self.lock.acquire(self.instance_id, self.address)
        try:
            self.open_journal()
            if is_sqlite(self.engine.url):
                try:
                    await self.repository.read_catalogue()
                except DatabaseUnavailable:
                    pass  # an outage: the `database` child waits for it
                except DatabaseCorrupt:
                    await self.engine.dispose()
                    raise
            return await run_application(self.root)
        finally:
            self.close_journal()
            if self.lock is not None:
                self.lock.release()
