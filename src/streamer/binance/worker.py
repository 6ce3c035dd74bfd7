"""The per-symbol streaming worker: a supervised child named by its symbol.

The worker's task owns its symbol's subscription for as long as it runs and does the symbol's
slow work (back-filling gaps over REST). Trades themselves never pass through it: they go from
the socket to the subscribers inside the read callback. An unexpected error while handling the
symbol's trades is handed to this task, which crashes with it, so its supervisor restarts this
symbol alone; the restarted worker resumes from the last trade id and back-fills what it missed.
"""

from __future__ import annotations

import asyncio

from streamer.binance.backfill import fill_gap
from streamer.binance.config import StreamerConfig
from streamer.binance.hub import StreamHub
from streamer.otp import ChildSpec, Registry, Restart, Started
from streamer.symbols import normalize_symbol

__all__ = ["StreamHub", "StreamerConfig", "run_symbol", "stream_spec"]


async def run_symbol(hub: StreamHub, symbol: str, started: Started) -> None:
    """The worker's body: subscribe, report started, then fill gaps until stopped or crashed.

    `started()` is called once the subscription is queued on a connection, not once the
    exchange confirmed it: starting 1,500 symbols then takes milliseconds, and the connection
    sends their subscriptions batched within the exchange's message limit.
    """
    channel = hub.attach(symbol)
    try:
        started()
        while True:
            await channel.wait()
            await asyncio.sleep(hub.config.reorder_window)
            if channel.settle():
                await fill_gap(
                    channel,
                    hub.history,
                    hub.config.max_backfill,
                    limiter=hub.backfills,
                    deadline=hub.config.gap_deadline,
                )
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
