"""Reading a sink back: `streamer tail --from nats://...` or `--from redis://...`.

Each broker's module knows its own wire contract and reads it back (`replay` in `nats.py` and
`redis.py`); this module only says where to start and picks the reader by the URL's scheme.
What a reader hands over is the same JSON document the sink published, so the terminal prints
it exactly as it prints `/ws/trades`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from streamer.sinks.urls import InvalidSinkUrl, SinkUrl, parse_sink_url

OnMessage = Callable[[dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class ReplayFrom:
    """Where reading starts: a trade id, a time, or (neither) only what arrives from now on."""

    trade_id: int | None = None
    time: datetime | None = None

    def __post_init__(self) -> None:
        if self.trade_id is not None and self.time is not None:
            raise InvalidSinkUrl("give a trade id or a time to replay from, not both")

    @property
    def live(self) -> bool:
        return self.trade_id is None and self.time is None

    def utc(self) -> datetime:
        """The start time in UTC (a naive time is taken as UTC)."""
        assert self.time is not None
        moment = self.time if self.time.tzinfo else self.time.replace(tzinfo=UTC)
        return moment.astimezone(UTC)

    def time_ms(self) -> int | None:
        """The start time in milliseconds since the epoch."""
        return None if self.time is None else int(self.utc().timestamp() * 1000)

    def keeps(self, document: dict[str, Any]) -> bool:
        """Whether a document read back is at or after the start."""
        if self.trade_id is not None:
            last = document.get("trade_id", document.get("last_missing_id", 0))
            return bool(last >= self.trade_id)
        start = self.time_ms()
        if start is not None and document.get("kind") == "trade":
            return bool(trade_time_ms(document["trade_time"]) >= start)
        return True


def trade_time_ms(value: int) -> int:
    """Exchange times are in ms, or in µs on connections that asked for microseconds."""
    return value // 1000 if value > 10**14 else value


Reader = Callable[[SinkUrl, Sequence[str], ReplayFrom, OnMessage], Awaitable[None]]


def _nats(
    url: SinkUrl, symbols: Sequence[str], start: ReplayFrom, on: OnMessage
) -> Awaitable[None]:
    from streamer.sinks.nats import replay

    return replay(url, symbols, start, on)


def _redis(
    url: SinkUrl, symbols: Sequence[str], start: ReplayFrom, on: OnMessage
) -> Awaitable[None]:
    from streamer.sinks.redis import replay

    return replay(url, symbols, start, on)


READERS: dict[str, Reader] = {"nats": _nats, "redis": _redis, "rediss": _redis}


async def follow_sink(
    text: str,
    symbols: Sequence[str],
    start: ReplayFrom,
    on_message: OnMessage,
    *,
    limit: int | None = None,
) -> None:
    """Call `on_message` with every document of `symbols` (all when empty) the sink at `text`
    holds from `start` on, then with each new one, until cancelled or `limit` documents."""
    url, _ = parse_sink_url(text)
    reader = READERS.get(url.scheme)
    if reader is None:
        known = ", ".join(f"{scheme}://" for scheme in sorted(READERS))
        raise InvalidSinkUrl(f"{url.label} cannot be followed: only {known} can")
    if limit is None:
        await reader(url, symbols, start, on_message)
        return
    enough = asyncio.Event()
    seen = 0

    def counted(document: dict[str, Any]) -> None:
        nonlocal seen
        if seen < limit:
            seen += 1
            on_message(document)
        if seen >= limit:
            enough.set()

    reading = asyncio.ensure_future(reader(url, symbols, start, counted))
    waiting = asyncio.ensure_future(enough.wait())
    try:
        await asyncio.wait({reading, waiting}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (reading, waiting):
            task.cancel()
        await asyncio.gather(reading, waiting, return_exceptions=True)
    if not enough.is_set():
        reading.result()
