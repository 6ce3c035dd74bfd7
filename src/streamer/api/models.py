"""The API's wire shapes: what the status view, the CLI and any client read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from streamer.db import Status
from streamer.stream.stats import LiveState


class SymbolState(BaseModel):
    """A symbol's persisted status beside what its worker is doing right now."""

    symbol: str
    owner: str | None = Field(None, description="the instance streaming it, if any")
    status: Status = Field(description="persisted: whether the symbol streams after a restart")
    state: LiveState = Field(description="live: what its worker is doing now")
    reason: str | None = Field(None, description="why the symbol is quarantined, stalled or halted")
    since: datetime | None = Field(None, description="when the worker entered this state")
    restarts: int = Field(0, description="restarts of the worker since the service started")
    trades: int = Field(0, description="trades delivered since the worker started")
    rate: float = Field(0.0, description="trades per second over the last second")
    last_trade_id: int | None = None
    last_trade_time: datetime | None = None
    gaps_filled: int = 0
    gaps_lost: int = 0
    rejected: dict[str, int] = Field(
        default_factory=dict, description="frames and rows dropped by validation, by reason"
    )


class StartResponse(BaseModel):
    """`already_running`: a worker was running before the call and was left as it was."""

    symbol: str
    already_running: bool


class StopResponse(BaseModel):
    """`was_running`: a worker was terminated (otherwise only `off` was persisted)."""

    symbol: str
    was_running: bool


class SinkHealth(BaseModel):
    """One sink: whether its destination answers, and what it could not deliver."""

    name: str
    state: str = Field(description="connecting, up, retrying or stopped")
    healthy: bool = Field(description="up, nothing lost in the last minute, not lagging")
    degraded: str | None = Field(default=None, description="why the sink is not healthy")
    required: bool = Field(description="whether readiness waits for this sink")
    lost: int = Field(description="trades announced lost in gap notices of this sink")
    refetched: int = Field(
        default=0, description="trades the journal's budget took, fetched again from the exchange"
    )
    lag: int = Field(description="events in the journal the destination has not confirmed")
    lag_seconds: float = Field(description="age of the oldest event not yet confirmed")
    last_error: str | None = Field(default=None, description="cleared once healthy again")


class JournalHealth(BaseModel):
    """The journal the sinks read: how much of its disk budget it uses."""

    path: str
    size: int = Field(description="bytes on disk")
    max_bytes: int = Field(description="the disk budget (--journal-max-bytes)")
    dropped: int = Field(description="trades the budget or a full disk took before every sink")


class BulkResponse(BaseModel):
    """A start or stop of many symbols: `changed` were started (or stopped), `unchanged`
    already were, `failed` could not be started, with why."""

    changed: list[str]
    unchanged: list[str]
    failed: dict[str, str] = Field(default_factory=dict)


class Health(BaseModel):
    """`live`: the process answers; `ready`: database reachable and streaming supervised
    (and every sink up, when sinks are required)."""

    live: bool
    ready: bool
    database: bool
    streaming: int = Field(description="symbols with a running worker")
    sinks: list[SinkHealth] = Field(default_factory=list)
    journal: JournalHealth | None = None


class Tree(BaseModel):
    """The supervision tree as plain data, the way an observer shows processes."""

    tree: dict[str, Any]


class Problem(BaseModel):
    """An error: `detail` is one line a person can act on."""

    detail: str


class ClusterInstance(BaseModel):
    """One live instance of the group; `symbols` are the ones it streams right now."""

    id: str
    address: str
    started: datetime
    last_seen: datetime
    symbols: list[str]


class Cluster(BaseModel):
    """Every live instance sharing this settings database (just this one on SQLite)."""

    instances: list[ClusterInstance]
