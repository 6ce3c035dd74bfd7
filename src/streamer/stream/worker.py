"""The per-symbol streaming worker: a supervised child named by its symbol.

The worker's task owns its symbol's subscription for as long as it runs and does the symbol's
slow work (back-filling gaps over REST). Trades themselves never pass through it: they go from
the socket to the subscribers inside the read callback.

A symbol whose data keeps failing validation, or whose processing raises, is quarantined rather
than crashed: the worker takes it off its connection for a capped, jittered backoff that grows
while the failures go on, then streams it again from its last trusted trade. A crash loop that
only this symbol has therefore never reaches the supervisor's restart intensity, and the other
symbols never see their supervisor restart; a crash of the worker itself stays the last resort.
"""

from __future__ import annotations

import asyncio
import logging

from streamer.otp import ChildSpec, Registry, Restart, Started
from streamer.stream.backfill import fill_gap
from streamer.stream.hub import StreamHub
from streamer.stream.pacing import Backoff
from streamer.symbols import normalize_symbol

__all__ = ["StreamHub", "run_symbol", "stream_spec"]

log = logging.getLogger(__name__)


async def run_symbol(hub: StreamHub, symbol: str, started: Started) -> None:
    """The worker's body: subscribe, report started, then fill gaps until stopped or crashed.

    `started()` is called once the subscription is queued on a connection, not once the
    exchange confirmed it: starting 1,500 symbols then takes milliseconds, and the connection
    sends their subscriptions batched within the exchange's message limit.
    """
    config = hub.config
    channel = hub.attach(symbol)
    backoff = Backoff(config.quarantine_base, config.quarantine_cap)
    released_at = hub.clock()
    try:
        started()
        while True:
            try:
                await channel.wait()
                if channel.quarantined is None:
                    await asyncio.sleep(config.reorder_window)
                    if channel.settle():
                        await fill_gap(
                            channel,
                            hub.history,
                            config.max_backfill,
                            limiter=hub.backfills,
                            deadline=config.gap_deadline,
                        )
            except Exception as error:  # one symbol's failure must not become its supervisor's
                log.exception("%s: processing failed", symbol)
                channel.quarantine(f"processing failed: {type(error).__name__}: {error}")
            if channel.quarantined is not None:
                if hub.clock() - released_at > 2 * config.quarantine_cap:
                    backoff.reset()
                await hub.sit_out(channel, backoff)
                released_at = hub.clock()
    finally:
        hub.detach(symbol)


def stream_spec(
    symbol: str,
    hub: StreamHub,
    *,
    restart: Restart = Restart.PERMANENT,
    registry: Registry | None = None,
) -> ChildSpec:
    """The child spec of `symbol`'s worker, named by the normalised symbol in `hub.registry`.

    Raises `InvalidSymbol` for a name that cannot be a symbol.
    """
    name = normalize_symbol(symbol)

    async def body(started: Started) -> None:
        await run_symbol(hub, name, started)

    return ChildSpec(
        id=name,
        start=body,
        restart=restart,
        name=(registry if registry is not None else hub.registry, name),
    )
