"""What a streamed symbol is doing right now, as typed values for the API, the CLI and metrics.

A snapshot is taken on demand (a status request, a scrape), never on the trade path, and is
frozen: whoever reads it sees one consistent moment of the symbol, whatever the streams do next.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec


class LiveState(StrEnum):
    """A symbol's live state, beside its persisted `on`/`off` status.

    `quarantined`: its data kept failing validation, so it is parked and retried with backoff.
    `stalled`: subscribed but silent beyond its own rhythm while the exchange says it trades.
    `halted`: the exchange itself says the symbol does not trade (HALT, BREAK, ...).
    """

    CONNECTING = "connecting"
    STREAMING = "streaming"
    BACKOFF = "backoff"
    STOPPED = "stopped"
    QUARANTINED = "quarantined"
    STALLED = "stalled"
    HALTED = "halted"


class SymbolStats(msgspec.Struct, frozen=True, kw_only=True):
    """One symbol's live counters at one moment.

    Times: `since` is when the symbol entered `state` (seconds since the epoch, local clock);
    `last_trade_time` keeps the connection's unit (ms, or µs with `timeUnit=MICROSECOND`).
    `reason` says why a symbol is quarantined, stalled or halted. `rejected` counts frames and
    REST rows dropped by validation, by reason (see `streamer.stream.validate`).
    """

    symbol: str
    state: LiveState
    since: float
    reason: str | None = None
    connection: str | None = None
    trades: int = 0
    rate: float = 0.0
    last_trade_id: int | None = None
    last_trade_time: int | None = None
    gaps_filled: int = 0
    gaps_lost: int = 0
    gaps_expired: int = 0
    trades_backfilled: int = 0
    trades_lost: int = 0
    duplicates: int = 0
    malformed: int = 0
    rejected: dict[str, int] = msgspec.field(default_factory=dict)
    quarantines: int = 0
