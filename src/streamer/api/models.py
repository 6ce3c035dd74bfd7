"""The API's wire shapes: what the status view, the CLI and any client read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from streamer.binance.channel import State
from streamer.db import Status


class SymbolState(BaseModel):
    """A symbol's persisted status beside what its worker is doing right now."""

    symbol: str
    owner: str | None = Field(None, description="the instance streaming it, if any")
    status: Status = Field(description="persisted: whether the symbol streams after a restart")
    state: State = Field(description="live: what its worker is doing now")
    since: datetime | None = Field(None, description="when the worker entered this state")
    restarts: int = Field(0, description="restarts of the worker since the service started")
    trades: int = Field(0, description="trades delivered since the worker started")
    rate: float = Field(0.0, description="trades per second over the last second")
    last_trade_id: int | None = None
    last_trade_time: datetime | None = None
    gaps_filled: int = 0
    gaps_lost: int = 0


class StartResponse(BaseModel):
    """`already_running`: a worker was running before the call and was left as it was."""

    symbol: str
    already_running: bool


class StopResponse(BaseModel):
    """`was_running`: a worker was terminated (otherwise only `off` was persisted)."""

    symbol: str
    was_running: bool


class Health(BaseModel):
    """`live`: the process answers; `ready`: database reachable and streaming supervised."""

    live: bool
    ready: bool
    database: bool
    streaming: int = Field(description="symbols with a running worker")


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
