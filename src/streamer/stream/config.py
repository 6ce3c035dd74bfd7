"""Tunables of the exchange-neutral engine: how it watches, back-fills and quarantines symbols.

A market's own configuration (endpoints, connection limits) extends this one, so one object
configures a market and the engine it feeds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streamer.stream.validate import TradeRule


@dataclass(frozen=True)
class EngineConfig:
    """How the hub watches its streams and fills their gaps.

    `check_interval` is the hub's tick: rates are refreshed and silent symbols looked at that
    often. A symbol silent for `stale_factor` times its own trade rhythm (and at least
    `stale_min` seconds) is resubscribed and the exchange asked why. Gap back-fills share one
    REST budget: at most `backfill_concurrency` gaps are filled at once and their requests
    spend at most `backfill_weight_per_minute` of the exchange's weight (the rest is left to
    other requests from the same IP). A gap holds its symbol's live trades for at most
    `gap_deadline` seconds of filling; `max_backfill` bounds how many trades one gap replays.
    Beyond either, the missing part is announced lost. Trades that arrive out of order are
    waited for `reorder_window` seconds before a gap is declared. `validation` is the rule
    every trade and REST row must pass; a symbol quarantined by it (or by an error in its own
    processing) is parked for a capped, jittered backoff from `quarantine_base` to
    `quarantine_cap` seconds, growing while it keeps failing. `time_unit` is the unit the
    market is asked to stamp trades in (None: its default, milliseconds).
    """

    check_interval: float = 1.0
    stale_factor: float = 50.0
    stale_min: float = 300.0
    reorder_window: float = 0.25
    max_backfill: int = 5_000
    gap_deadline: float = 10.0
    backfill_concurrency: int = 4
    backfill_weight_per_minute: int = 3_000
    time_unit: str | None = None
    validation: TradeRule = field(default_factory=TradeRule)
    quarantine_base: float = 1.0
    quarantine_cap: float = 300.0

    def __post_init__(self) -> None:
        if self.backfill_concurrency < 1:
            raise ValueError(
                f"backfill_concurrency must be at least 1, got {self.backfill_concurrency}"
            )
