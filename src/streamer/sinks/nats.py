"""NATS JetStream: one stream for every symbol, de-duplicated by message id inside its window.

Wire contract (`prefix` defaults to `streamer`, `stream` to `STREAMER_TRADES`):

- the stream `<stream>` holds the subjects `<prefix>.trades.>` and `<prefix>.gaps.>`; it is
  created at start, or updated to the configured limits when it exists;
- a trade of `SYMBOL` is published on `<prefix>.trades.<SYMBOL>` with the header
  `Nats-Msg-Id: <SYMBOL>:<trade_id>`, a gap notice on `<prefix>.gaps.<SYMBOL>` with
  `Nats-Msg-Id: <SYMBOL>:gap:<first>-<last>`;
- the payload is the event's JSON, the same document as `/ws/trades`.

JetStream drops a message whose id it has seen within `duplicate_window` seconds, which is how a
re-sent trade (after a retry, a restart or a back-fill) is dropped; the acknowledgement says so
and it is counted in `duplicates`. Beyond the window, the sink itself drops what the stream
already holds: once per connection it asks the stream for each symbol's last trade, and sends
nothing at or below it (an instance back after minutes, with trades in its journal that another
instance sent meanwhile). A batch not fully acknowledged within `timeout` seconds is
retried whole.

A batch is published without waiting on any message: every message of it names the same reply
subject, one per batch, and JetStream answers each there with its acknowledgement; the batch is
confirmed once as many acknowledgements as messages arrived, none of them an error. (nats-py's
`publish_async` does the same with a future, a token, a semaphore and a JSON parse per message,
which cost more CPU than the stream feeding the sink.) At most `WINDOW` messages are in flight.

URL: `nats://[user:password@]host:4222?stream=STREAMER_TRADES&prefix=streamer&max_age=86400`
`&max_bytes=1073741824&max_msgs=-1&duplicate_window=120&storage=file&timeout=5`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit, urlunsplit

import msgspec
import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from streamer.events import GapNotice, TradeEvent
from streamer.sinks.base import SinkError, SinkEvent, SinkUnavailable
from streamer.sinks.replay import OnMessage, ReplayFrom
from streamer.sinks.urls import InvalidSinkUrl, SinkUrl
from streamer.wire import decode_event

log = logging.getLogger(__name__)

DEFAULT_STREAM = "STREAMER_TRADES"
DEFAULT_PREFIX = "streamer"
DEFAULT_TIMEOUT = 5.0
"""Seconds to wait for a batch's acknowledgements before it is sent again."""
CONNECT_TIMEOUT = 2.0
MSG_ID = "Nats-Msg-Id"
WINDOW = 10_000
"""Most messages published before their acknowledgements are awaited."""


class _ApiError(msgspec.Struct, frozen=True):
    code: int = 0
    description: str = ""


class _PubAck(msgspec.Struct, frozen=True):
    """JetStream's answer to one published message (the fields the sink reads)."""

    duplicate: bool = False
    error: _ApiError | None = None


_decode_ack = msgspec.json.Decoder(_PubAck).decode


class _Acks:
    """The acknowledgements of the messages in flight, counted as the server sends them."""

    def __init__(self, subject: str, expected: int) -> None:
        self.subject = subject
        self.expected = expected
        self.received = 0
        self.duplicates = 0
        self.error: str | None = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def add(self, message: Msg) -> None:
        if not message.data:  # a status such as 503: no stream holds the subject
            status = (message.headers or {}).get("Status", "no answer")
            self.error = self.error or f"no stream answered ({status})"
        else:
            try:
                ack = _decode_ack(message.data)
            except msgspec.DecodeError:
                self.error = self.error or f"unreadable acknowledgement {message.data[:80]!r}"
            else:
                if ack.error is not None:
                    self.error = self.error or f"{ack.error.description} ({ack.error.code})"
                elif ack.duplicate:
                    self.duplicates += 1
        self.received += 1
        if self.received == self.expected and not self.done.done():
            self.done.set_result(None)


def trades_subject(prefix: str, symbol: str) -> str:
    return f"{prefix}.trades.{symbol}"


def gaps_subject(prefix: str, symbol: str) -> str:
    return f"{prefix}.gaps.{symbol}"


def hpub_frames(
    prefix: str, events: Sequence[SinkEvent], payloads: Sequence[bytes], reply: str
) -> bytes:
    """The protocol's `HPUB` commands for a batch, as one buffer.

    The same bytes nats-py's `publish(subject, payload, reply=, headers={MSG_ID: ...})` writes
    (a test holds them equal), built once per batch: per message, nats-py validates, builds a
    header dict and a bytearray and awaits its pending buffer, which cost more CPU than the
    stream feeding the sink. Symbols and ids come from the stream's validated events, so
    nothing in them can break a frame.
    """
    frames: list[bytes] = []
    append = frames.append
    for event, payload in zip(events, payloads, strict=True):
        if type(event) is TradeEvent:
            subject = trades_subject(prefix, event.symbol)
            msg_id = f"{event.symbol}:{event.trade_id}"
        else:
            assert isinstance(event, GapNotice)
            subject = gaps_subject(prefix, event.symbol)
            msg_id = f"{event.symbol}:gap:{event.first_missing_id}-{event.last_missing_id}"
        header = f"NATS/1.0\r\n{MSG_ID}: {msg_id}\r\n\r\n".encode()
        size = len(header)
        append(f"HPUB {subject} {reply} {size} {size + len(payload)}\r\n".encode())
        append(header)
        append(payload)
        append(b"\r\n")
    return b"".join(frames)


async def send(client: Client, frames: bytes, count: int) -> None:
    """Hand a batch of frames to nats-py's connection as one write, and flush it.

    nats-py has no public call for a batch of messages; its own `publish` ends in these two
    calls, so the connection's buffering, limits and flusher stay nats-py's.
    """
    if client.is_closed or not client.is_connected:
        raise nats.errors.ConnectionClosedError
    client.stats["out_msgs"] += count
    client.stats["out_bytes"] += len(frames)
    await client._send_command(frames)
    await client._flush_pending()


def named(label: str, *, stream: str, prefix: str) -> str:
    extra = [
        f"{key}={value}"
        for key, value, default in (
            ("stream", stream, DEFAULT_STREAM),
            ("prefix", prefix, DEFAULT_PREFIX),
        )
        if value != default
    ]
    return label + ("?" + "&".join(extra) if extra else "")


def server_url(url: SinkUrl) -> str:
    """The URL handed to nats-py: the connection part only."""
    parts = urlsplit(url.text)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


async def _quiet(error: Exception) -> None:
    """nats-py reports every connection error; the runner's state and log already say so."""
    log.debug("nats: %s", error)


async def connect(url: SinkUrl, on_closed: Callable[[], None] | None = None) -> Client:
    """A fresh connection; `SinkUnavailable` if the server cannot be reached.

    It does not reconnect by itself: nats-py would send what it buffered during the outage
    when it gets back, ahead of the batch the runner sends again, and a trade lost on the
    broken connection would then land after later ones. A new connection per outage keeps
    what the server stored a prefix of what was sent, so the re-sent batch stays in order.
    """

    async def closed() -> None:
        if on_closed is not None:
            on_closed()

    try:
        return await nats.connect(
            server_url(url),
            closed_cb=closed,
            connect_timeout=CONNECT_TIMEOUT,
            allow_reconnect=False,
            max_reconnect_attempts=1,
            reconnect_time_wait=0.1,
            error_cb=_quiet,
        )
    except (NatsError, OSError, TimeoutError) as error:
        raise SinkUnavailable(f"{url.label}: {error or type(error).__name__}") from None


class NatsSink:
    """Makes batches durable in a JetStream stream; see the module docstring for the contract."""

    def __init__(
        self, url: SinkUrl, config: StreamConfig, *, prefix: str, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.config = config
        self.prefix = prefix
        self.duplicates = 0
        self._client: Client | None = None
        self._js: JetStreamContext | None = None
        self._inbox = ""
        self._sent = 0
        self._acks: _Acks | None = None
        self._held: dict[str, int] = {}
        """Per symbol, the last trade id the stream holds, asked once per connection."""

    @property
    def name(self) -> str:
        """The server, and the stream and prefix unless they are the defaults: two sinks into
        different streams of one server are told apart in logs, metrics and journal cursors."""
        return named(self.url.label, stream=self.config.name or "", prefix=self.prefix)

    async def open(self) -> None:
        """Connect (again, after an outage) and create or update the stream."""
        if self._client is not None and not self._client.is_closed and self._js is not None:
            return
        await self.close()
        client = self._client = await connect(self.url)
        js = client.jetstream(timeout=self.timeout)
        name = self.config.name
        assert name is not None
        try:
            try:
                await js.stream_info(name)
            except NotFoundError:
                await js.add_stream(self.config)
            else:
                await js.update_stream(self.config)
        except (TimeoutError, nats.errors.ConnectionClosedError, OSError) as error:
            raise SinkUnavailable(f"{self.name}: {error or type(error).__name__}") from None
        except NatsError as error:
            raise SinkError(f"{self.name}: stream {name}: {error}") from None
        self._inbox = client.new_inbox()
        await client.subscribe(f"{self._inbox}.*", cb=self._on_ack)
        self._held.clear()
        self._js = js

    async def _on_ack(self, message: Msg) -> None:
        acks = self._acks
        if acks is not None and message.subject == acks.subject:
            acks.add(message)  # an ack of an earlier, abandoned attempt is ignored

    async def _last_held(self, symbol: str) -> int:
        """The last trade id of `symbol` the stream holds (-1: none), asked once per connection.

        What makes a re-send older than the duplicate window harmless: an instance that comes
        back after minutes with trades in its journal that another instance already sent."""
        held = self._held.get(symbol)
        if held is not None:
            return held
        assert self._js is not None
        name = self.config.name
        assert name is not None
        try:
            message = await self._js.get_last_msg(name, trades_subject(self.prefix, symbol))
        except NotFoundError:
            held = -1
        else:
            msg_id = (message.headers or {}).get(MSG_ID, "")
            held = int(msg_id.rsplit(":", 1)[1]) if msg_id.count(":") == 1 else -1
        self._held[symbol] = held
        return held

    async def _unheld(
        self, events: Sequence[SinkEvent], payloads: Sequence[bytes]
    ) -> tuple[list[SinkEvent], list[bytes]]:
        """The batch without what the stream already holds (counted as duplicates)."""
        kept: list[SinkEvent] = []
        kept_payloads: list[bytes] = []
        held = self._held
        for event, payload in zip(events, payloads, strict=True):
            symbol = event.symbol
            last = held.get(symbol)
            if last is None:
                last = await self._last_held(symbol)
            if type(event) is TradeEvent:
                newest = event.trade_id
            else:
                assert isinstance(event, GapNotice)
                newest = event.last_missing_id
            if newest <= last:
                self.duplicates += 1
                continue
            kept.append(event)
            kept_payloads.append(payload)
        return kept, kept_payloads

    def _now_held(self, events: Sequence[SinkEvent]) -> None:
        held = self._held
        for event in events:
            if type(event) is TradeEvent and event.trade_id > held.get(event.symbol, -1):
                held[event.symbol] = event.trade_id

    async def publish(self, events: Sequence[SinkEvent], payloads: Sequence[bytes]) -> None:
        await self.open()
        client = self._client
        assert client is not None
        try:
            events, payloads = await self._unheld(events, payloads)
            async with asyncio.timeout(self.timeout):
                for start in range(0, len(events), WINDOW):
                    window = events[start : start + WINDOW]
                    self._sent += 1
                    acks = self._acks = _Acks(f"{self._inbox}.{self._sent}", len(window))
                    frames = hpub_frames(
                        self.prefix, window, payloads[start : start + WINDOW], acks.subject
                    )
                    await send(client, frames, len(window))
                    await acks.done
                    self.duplicates += acks.duplicates
                    if acks.error is not None:
                        self._js = None  # the stream may be gone: the retry opens it again
                        raise SinkUnavailable(f"{self.name}: {acks.error}")
                    self._now_held(window)
        except (TimeoutError, NatsError, OSError) as error:
            raise SinkUnavailable(
                f"{self.name}: batch not acknowledged ({error or type(error).__name__})"
            ) from None
        finally:
            self._acks = None

    async def close(self) -> None:
        client, self._client, self._js = self._client, None, None
        if client is not None:
            with contextlib.suppress(NatsError, OSError, TimeoutError):
                await client.close()


def from_url(url: SinkUrl) -> NatsSink:
    url.check_params(
        {
            "stream",
            "prefix",
            "max_age",
            "max_bytes",
            "max_msgs",
            "duplicate_window",
            "storage",
            "timeout",
        }
    )
    prefix = url.param("prefix", DEFAULT_PREFIX)
    stream = url.param("stream", DEFAULT_STREAM)
    if not prefix or not stream:
        raise InvalidSinkUrl(f"{url.label}: stream and prefix must not be empty")
    storage = url.param("storage", "file")
    if storage not in ("file", "memory"):
        raise InvalidSinkUrl(f"{url.label}: storage must be file or memory, got {storage!r}")
    max_age = url.number("max_age", 0, float)
    window = url.number("duplicate_window", 120.0, float)
    if max_age:
        window = min(window, max_age)  # JetStream refuses a window longer than the retention
    config = StreamConfig(
        name=stream,
        subjects=[f"{prefix}.trades.>", f"{prefix}.gaps.>"],
        max_age=max_age,
        max_bytes=int(url.number("max_bytes", -1)),
        max_msgs=int(url.number("max_msgs", -1)),
        duplicate_window=window,
        storage=StorageType(storage),
    )
    return NatsSink(
        url, config, prefix=prefix, timeout=url.number("timeout", DEFAULT_TIMEOUT, float)
    )


async def replay(
    url: SinkUrl, symbols: Sequence[str], start: ReplayFrom, on_message: OnMessage
) -> None:
    """Read the stream back through ordered consumers, from `start` on, until cancelled.

    A time starts at the first message the stream stored at or after it; a trade id reads
    from the first message the stream still holds and skips what comes before the id.
    """
    sink = from_url(url)
    closed = asyncio.Event()
    client = await connect(url, on_closed=closed.set)
    try:
        js = client.jetstream(timeout=sink.timeout)
        config = ConsumerConfig()
        if start.live:
            policy = DeliverPolicy.NEW
        elif start.time is not None:
            policy = DeliverPolicy.BY_START_TIME
            config.opt_start_time = start.utc()
        else:
            policy = DeliverPolicy.ALL

        async def deliver(message: Msg) -> None:
            document = decode_event(message.data)
            if start.keeps(document):
                on_message(document)

        config.filter_subjects = [
            subject(sink.prefix, symbol)
            for symbol in symbols
            for subject in (trades_subject, gaps_subject)
        ] or [f"{sink.prefix}.trades.>", f"{sink.prefix}.gaps.>"]
        await js.subscribe(
            config.filter_subjects[0],
            stream=sink.config.name,
            cb=deliver,
            ordered_consumer=True,
            deliver_policy=policy,
            config=config,
        )
        await closed.wait()
        raise SinkUnavailable(f"{url.label}: the connection was lost")
    except (TimeoutError, NatsError, OSError) as error:
        raise SinkUnavailable(f"{url.label}: {error or type(error).__name__}") from None
    finally:
        with contextlib.suppress(NatsError, OSError, TimeoutError):
            await client.close()
