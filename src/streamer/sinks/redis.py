"""Redis Streams: a stream per symbol, entry ids that are trade ids, so Redis de-duplicates.

Wire contract (`prefix` defaults to `streamer`):

- trades of `SYMBOL` go to the stream `<prefix>:trades:<SYMBOL>`, entry id `<trade_id>-0`;
- gap notices go to `<prefix>:gaps:<SYMBOL>`, entry id `<first_missing_id>-0`;
- each entry has one field, `data`: the event's JSON, the same document as `/ws/trades`.

Redis refuses an explicit id that is not above the stream's last one ("equal or smaller than the
target stream top item"); that refusal is how a re-sent trade is dropped, so it is counted in
`duplicates`, not treated as an error. Streams are capped with `MAXLEN ~ maxlen` (0: no cap).

A batch is one command: a server-side script (`XADD_BATCH`) runs the same `XADD`s a pipeline
would, in order, and answers with how many were duplicates and the first other refusal. A
pipeline costs the client a packed command and a parsed reply per entry, which made the sink
slower than the stream feeding it; the script's one reply confirms the whole batch.

URL: `redis://[:password@]host:6379/0?prefix=streamer&maxlen=1000000&timeout=5` (`rediss://`
for TLS).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from streamer.events import TradeEvent
from streamer.sinks.base import SinkError, SinkEvent, SinkUnavailable
from streamer.sinks.replay import OnMessage, ReplayFrom
from streamer.sinks.runner import reraise_cancellation
from streamer.sinks.urls import InvalidSinkUrl, SinkUrl
from streamer.wire import decode_event

DEFAULT_PREFIX = "streamer"
DEFAULT_MAXLEN = 1_000_000
DEFAULT_TIMEOUT = 5.0
"""Seconds a command may take before the batch is retried (a stalled server is an outage)."""
REPLAY_PAGE = 1000
REPLAY_BLOCK_MS = 1000
DUPLICATE = "equal or smaller than the target stream top item"
FIELD = "data"
XADD_BATCH = f"""
local maxlen = ARGV[1]
local entries = cmsgpack.unpack(ARGV[2])
local duplicates = 0
local refused = false
for _, entry in ipairs(entries) do
  local key = KEYS[entry[1]]
  local reply
  if maxlen == '0' then
    reply = redis.pcall('XADD', key, entry[2], '{FIELD}', entry[3])
  else
    reply = redis.pcall('XADD', key, 'MAXLEN', '~', maxlen, entry[2], '{FIELD}', entry[3])
  end
  if type(reply) == 'table' and reply.err then
    if string.find(reply.err, '{DUPLICATE}', 1, true) then
      duplicates = duplicates + 1
    elseif not refused then
      refused = reply.err
    end
  end
end
return {{duplicates, refused}}
"""
"""`KEYS`: the batch's streams; `ARGV`: the cap (0: none) and the entries as one MessagePack
array of `[index of the stream in KEYS, entry id, JSON]` (one argument instead of three per
entry keeps the client's cost per entry to a few encodes). Answers
`{{duplicates, first other error or nil}}`."""
_pack = msgspec.msgpack.Encoder().encode


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
        """The server and database, and the prefix unless it is the default: two sinks with
        different prefixes are told apart in logs, metrics and journal cursors."""
        if self.prefix == DEFAULT_PREFIX:
            return self.url.label
        return f"{self.url.label}?prefix={self.prefix}"

    async def open(self) -> None:
        client = self._client or connect(self.url, self.timeout)
        self._client = client
        try:
            await client.ping()
        except (RedisConnectionError, RedisTimeoutError, OSError) as error:
            raise SinkUnavailable(f"{self.name}: {error}") from None

    async def publish(self, events: Sequence[SinkEvent], payloads: Sequence[bytes]) -> None:
        if self._client is None:
            raise SinkUnavailable(f"{self.name}: not open")
        keys: dict[str, int] = {}
        entries: list[tuple[int, str, str]] = []
        for event, payload in zip(events, payloads, strict=True):
            key = (trades_key if isinstance(event, TradeEvent) else gaps_key)(
                self.prefix, event.symbol
            )
            index = keys.setdefault(key, len(keys) + 1)
            # Lua's MessagePack reads strings, not binaries: the JSON goes as (UTF-8) text.
            entries.append((index, entry_id(event), payload.decode()))
        try:
            reply = await self._client.eval(
                XADD_BATCH, len(keys), *keys, self.maxlen or 0, _pack(entries)
            )
        except (RedisConnectionError, RedisTimeoutError, OSError) as error:
            raise SinkUnavailable(f"{self.name}: {error}") from None
        except RedisError as error:
            raise SinkError(f"{self.name}: {error}") from None
        duplicates, *refused = cast(list[Any], reply)
        self.duplicates += int(duplicates)
        if refused and refused[0]:
            raise SinkError(f"{self.name}: {refused[0].decode()}")

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


Entry = tuple[bytes, dict[bytes, bytes]]
"""One stream entry as redis-py returns it: its id and its fields (bytes, not decoded)."""


async def _xrange(client: aioredis.Redis, key: str, cursor: str) -> list[Entry]:
    # redis-py's annotations leave the shape of stream replies open.
    return cast(list[Entry], await client.xrange(key, min=cursor, count=REPLAY_PAGE))


async def _xread(
    client: aioredis.Redis, positions: dict[str, str]
) -> list[tuple[bytes, list[Entry]]]:
    streams = cast(dict[Any, Any], positions)
    reply = await client.xread(streams, count=REPLAY_PAGE, block=REPLAY_BLOCK_MS)
    return cast(list[tuple[bytes, list[Entry]]], reply or [])


async def _first_entry_at(client: aioredis.Redis, key: str, start: ReplayFrom) -> str:
    """The id after which reading `key` starts (XREAD returns entries above it)."""
    if start.live:
        last = cast(list[Entry], await client.xrevrange(key, count=1))
        return last[0][0].decode() if last else "0-0"
    if start.trade_id is not None:
        return f"{start.trade_id - 1}-0" if start.trade_id > 0 else "0-0"
    cursor = "-"
    while True:
        page = await _xrange(client, key, cursor)
        for entry_id, fields in page:
            if start.keeps(decode_event(fields[FIELD.encode()])):
                number = int(entry_id.decode().split("-", 1)[0])
                return f"{number - 1}-0" if number > 0 else "0-0"
        if len(page) < REPLAY_PAGE:
            return page[-1][0].decode() if page else "0-0"
        cursor = "(" + page[-1][0].decode()


async def replay(
    url: SinkUrl, symbols: Sequence[str], start: ReplayFrom, on_message: OnMessage
) -> None:
    """Read the sink's streams back with XREAD, from `start` on, until cancelled.

    Without symbols, every symbol that has a stream when reading starts is followed.
    """
    sink = from_url(url)
    client = connect(url, sink.timeout)
    try:
        if symbols:
            keys = [f(sink.prefix, s) for s in symbols for f in (trades_key, gaps_key)]
        else:
            keys = sorted(
                [key.decode() async for key in client.scan_iter(f"{sink.prefix}:trades:*")]
                + [key.decode() async for key in client.scan_iter(f"{sink.prefix}:gaps:*")]
            )
        positions: dict[str, str] = {}
        for key in keys:
            positions[key] = await _first_entry_at(client, key, start)
        while True:
            replies = await _xread(client, positions)
            reraise_cancellation()
            for name, entries in replies:
                for entry_id, fields in entries:
                    positions[name.decode()] = entry_id.decode()
                    document = decode_event(fields[FIELD.encode()])
                    if start.keeps(document):
                        on_message(document)
    except (RedisConnectionError, RedisTimeoutError, OSError) as error:
        raise SinkUnavailable(f"{url.label}: {error}") from None
    finally:
        with contextlib.suppress(RedisError, OSError):
            await client.aclose()
