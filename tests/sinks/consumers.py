"""Independent consumers of the brokers, with the plain client libraries and nothing of ours,
and the check that what they read accounts for every trade exactly once, in order."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, cast

import nats
import redis.asyncio as aioredis
from nats.js.api import DeliverPolicy

from tests.fixtures.brokers import NatsTarget, RedisTarget


@dataclass
class Received:
    """What a consumer read for one symbol, in the order the broker holds it."""

    trades: list[int] = field(default_factory=list)
    gaps: list[tuple[int, int]] = field(default_factory=list)
    documents: list[dict[str, Any]] = field(default_factory=list)

    def add(self, document: dict[str, Any]) -> None:
        self.documents.append(document)
        if document["kind"] == "trade":
            self.trades.append(document["trade_id"])
        else:
            self.gaps.append((document["first_missing_id"], document["last_missing_id"]))

    def unaccounted(self) -> list[int]:
        """Trade ids between the first and the last received that neither arrived nor were
        announced in a gap notice."""
        if not self.trades:
            return []
        covered = set(self.trades)
        for first, last in self.gaps:
            covered.update(range(first, last + 1))
        return [i for i in range(self.trades[0], self.trades[-1] + 1) if i not in covered]

    def assert_exactly_once_in_order(self) -> None:
        repeated = len(self.trades) - len(set(self.trades))
        assert repeated == 0, f"{repeated} trades arrived more than once"
        assert self.trades == sorted(self.trades), "trades arrived out of order"
        missing = self.unaccounted()
        assert not missing, f"{len(missing)} trades missing without a gap notice: {missing[:10]}"


async def read_nats(target: NatsTarget) -> dict[str, Received]:
    """Every message of the test's stream, through a JetStream ordered consumer."""
    client = await nats.connect(target.server)
    try:
        js = client.jetstream()
        total = (await js.stream_info(target.stream)).state.messages
        sub = await js.subscribe(
            f"{target.prefix}.>",
            stream=target.stream,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.ALL,
        )
        received: dict[str, Received] = {}
        for _ in range(total):
            message = await sub.next_msg(timeout=10)
            document = json.loads(message.data)
            kind = "trades" if document["kind"] == "trade" else "gaps"
            assert message.subject == f"{target.prefix}.{kind}.{document['symbol']}"
            received.setdefault(document["symbol"], Received()).add(document)
        await sub.unsubscribe()
        return received
    finally:
        await client.close()


Entry = tuple[bytes, dict[bytes, bytes]]


async def xrange(client: aioredis.Redis, key: str) -> list[Entry]:
    """The whole stream at `key`, a page at a time (redis-py's own annotation leaves the
    reply's shape open)."""
    entries: list[Entry] = []
    start = "-"
    while True:
        page = cast(list[Entry], await client.xrange(key, min=start, count=20_000))
        entries.extend(page)
        if len(page) < 20_000:
            return entries
        start = "(" + page[-1][0].decode()


async def read_redis(target: RedisTarget) -> dict[str, Received]:
    """Every entry of the test's streams, with XRANGE; trades and gaps merged by trade id."""
    client = aioredis.Redis.from_url(target.server)
    try:
        received: dict[str, Received] = {}
        keys = sorted([key.decode() async for key in client.scan_iter(f"{target.prefix}:*")])
        for key in keys:
            symbol = key.rsplit(":", 1)[1]
            for entry_id, fields in await xrange(client, key):
                document = json.loads(fields[b"data"])
                number = document.get("trade_id", document.get("first_missing_id"))
                assert entry_id.decode() == f"{number}-0"
                received.setdefault(symbol, Received()).add(document)
        for got in received.values():
            got.documents.sort(key=lambda d: d.get("trade_id", d.get("first_missing_id", 0)))
        return received
    finally:
        await client.aclose()
