"""Redis Streams: a stream per symbol, entry ids that are trade ids, so Redis de-duplicates.

Wire contract (`prefix` defaults to `streamer`):

- trades of `SYMBOL` go to the stream `<prefix>:trades:<SYMBOL>`, entry id `<trade_id>-0`;
- gap notices go to `<prefix>:gaps:<SYMBOL>`, entry id `<first_missing_id>-0`;
- each entry has one field, `data`: the event's JSON, the same document as `/ws/trades`.

Redis refuses an explicit id that is not above the stream's last one ("equal or smaller than the
target stream top item"); that refusal is how a re-sent trade is dropped, so it is counted in
`duplicates`, not treated as an error. Each batch is one pipeline (one round trip). Streams are
capped with `MAXLEN ~ maxlen` (0: no cap).

URL: `redis://[:password@]host:6379/0?prefix=streamer&maxlen=1000000&timeout=5` (`rediss://`
for TLS).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from streamer.binance.events import TradeEvent
from streamer.sinks.base import SinkError, SinkEvent, SinkUnavailable
from streamer.sinks.urls import InvalidSinkUrl, SinkUrl
from streamer.sinks.wire import encode_event

DEFAULT_PREFIX = "streamer"
DEFAULT_MAXLEN = 1_000_000
DEFAULT_TIMEOUT = 5.0
"""Seconds a command may take before the batch is retried (a stalled server is an outage)."""
DUPLICATE = "equal or smaller than the target stream top item"
FIELD = "data"


def trades_key(prefix: str, symbol: str) -> str:
    return f"{prefix}:trades:{symbol}"


def gaps_key(prefix: str, symbol: str) -> str:
    return f"{prefix}:gaps:{symbol}"


def entry_id(event: SinkEvent) -> str:
    number = event.trade_id if isinstance(event, TradeEvent) else event.first_missing_id
    return f"{number}-0"


def server_url(url: SinkUrl) -> str:
    """The URL handed to redis-py: the connection part only, the sink's parameters removed."""
    parts = urlsplit(url.text)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def connect(url: SinkUrl, timeout: float = DEFAULT_TIMEOUT) -> aioredis.Redis:
    """A redis-py client for the URL's server; commands that take longer than `timeout` fail."""
    client: aioredis.Redis = aioredis.Redis.from_url(
        server_url(url), socket_timeout=timeout, socket_connect_timeout=timeout
    )
    return client


class RedisSink:
    """Makes batches durable in Redis Streams; see the module docstring for the contract."""

    def __init__(
        self,
        url: SinkUrl,
        *,
        prefix: str = DEFAULT_PREFIX,
        maxlen: int = DEFAULT_MAXLEN,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.prefix = prefix
        self.maxlen = maxlen or None
        self.duplicates = 0
        self._client: aioredis.Redis | None = None

    @property
    def name(self) -> str:
        return self.url.label

    async def open(self) -> None:
        client = self._client or connect(self.url, self.timeout)
        self._client = client
        try:
            await client.ping()
        except (RedisConnectionError, RedisTimeoutError, OSError) as error:
            raise SinkUnavailable(f"{self.name}: {error}") from None

    async def publish(self, events: Sequence[SinkEvent]) -> None:
        if self._client is None:
            raise SinkUnavailable(f"{self.name}: not open")
        pipe = self._client.pipeline(transaction=False)
        for event in events:
            key = trades_key if isinstance(event, TradeEvent) else gaps_key
            pipe.xadd(
                key(self.prefix, event.symbol),
                {FIELD: encode_event(event)},
                id=entry_id(event),
                maxlen=self.maxlen,
                approximate=True,
            )
        try:
            results: list[Any] = await pipe.execute(raise_on_error=False)
        except (RedisConnectionError, RedisTimeoutError, OSError) as error:
            raise SinkUnavailable(f"{self.name}: {error}") from None
        except RedisError as error:
            raise SinkError(f"{self.name}: {error}") from None
        for result in results:
            if isinstance(result, ResponseError) and DUPLICATE in str(result):
                self.duplicates += 1
            elif isinstance(result, (RedisConnectionError, RedisTimeoutError)):
                raise SinkUnavailable(f"{self.name}: {result}")
            elif isinstance(result, Exception):
                raise SinkError(f"{self.name}: {result}")

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()


def from_url(url: SinkUrl) -> RedisSink:
    url.check_params({"prefix", "maxlen", "timeout"})
    prefix = url.param("prefix", DEFAULT_PREFIX)
    if not prefix:
        raise InvalidSinkUrl(f"{url.label}: prefix must not be empty")
    return RedisSink(
        url,
        prefix=prefix,
        maxlen=int(url.number("maxlen", DEFAULT_MAXLEN)),
        timeout=url.number("timeout", DEFAULT_TIMEOUT, float),
    )
