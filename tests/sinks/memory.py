"""A sink that keeps batches in memory, for testing the runner without a broker.

It honours the protocol's contract: it drops what it already holds (by symbol and trade id), and
the test decides when it is unavailable, refuses a batch, or stalls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from streamer.events import GapNotice, TradeEvent
from streamer.sinks import SinkError, SinkEvent, SinkUnavailable


class MemorySink:
    def __init__(self, name: str = "memory://test") -> None:
        self._name = name
        self.events: list[SinkEvent] = []
        self.payloads: list[bytes] = []
        self.batches = 0
        self.unavailable = False
        self.refuse_next = False
        self.gate = asyncio.Event()
        self.gate.set()
        self.opened = 0
        self.closed = 0
        self._held: set[tuple[str, int]] = set()

    @property
    def name(self) -> str:
        return self._name

    async def open(self) -> None:
        if self.unavailable:
            raise SinkUnavailable("down")
        self.opened += 1

    async def publish(self, events: Sequence[SinkEvent], payloads: Sequence[bytes]) -> None:
        assert len(payloads) == len(events)
        self.payloads.extend(payloads)
        await self.gate.wait()
        if self.unavailable:
            raise SinkUnavailable("down")
        if self.refuse_next:
            self.refuse_next = False
            raise SinkError("refused")
        self.batches += 1
        for event in events:
            if isinstance(event, TradeEvent):
                key = (event.symbol, event.trade_id)
                if key in self._held:
                    continue
                self._held.add(key)
            self.events.append(event)

    async def close(self) -> None:
        self.closed += 1

    def trade_ids(self, symbol: str) -> list[int]:
        return [e.trade_id for e in self.events if isinstance(e, TradeEvent) and e.symbol == symbol]

    def gaps(self, symbol: str) -> list[tuple[int, int]]:
        return [
            (e.first_missing_id, e.last_missing_id)
            for e in self.events
            if isinstance(e, GapNotice) and e.symbol == symbol
        ]
