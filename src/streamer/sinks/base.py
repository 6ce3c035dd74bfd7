"""The one protocol every sink implements.

A sink only knows how to make a batch durable at its destination. Reading the journal,
batching, retrying with backoff, counting and announcing losses belong to the code that runs
sinks, so that a new destination is one module implementing these three methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from streamer.errors import StreamerError
from streamer.events import GapNotice, TradeEvent

SinkEvent = TradeEvent | GapNotice


class SinkError(StreamerError):
    """A sink is misconfigured or refused an event for good: retrying would not help."""


class SinkUnavailable(SinkError):
    """The destination cannot be reached or did not confirm a batch: the same batch is retried."""


class Sink(Protocol):
    """A destination outside the process for trades and gap notices, in order per symbol.

    `publish` returns only once the whole batch is durable at the destination (acknowledged by
    the broker, renamed into place on disk), and raises `SinkUnavailable` otherwise, in which case
    the caller sends the same batch again: every sink must therefore drop a trade it already
    holds, keyed by symbol and trade id.
    """

    @property
    def name(self) -> str:
        """A short label for logs, metrics and the tree, such as `nats://127.0.0.1:4222`."""
        ...

    async def open(self) -> None:
        """Connect and prepare the destination; `SinkUnavailable` when it cannot be reached."""
        ...

    async def publish(self, events: Sequence[SinkEvent], payloads: Sequence[bytes]) -> None:
        """Make `events` durable, in order; raise `SinkUnavailable` to have them sent again.

        `payloads[i]` is the JSON document of `events[i]` (`streamer.wire`), encoded once for
        every sink: a sink that sends documents sends these bytes rather than encoding again.
        """
        ...

    async def close(self) -> None:
        """Flush and release the destination; never raises."""
        ...
