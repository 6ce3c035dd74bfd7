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
and it is counted in `duplicates`. A batch not fully acknowledged within `timeout` seconds is
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

from streamer.events import TradeEvent
from streamer.sinks.base import SinkError, SinkEvent, SinkUnavailable
from streamer.sinks.replay import OnMessage, ReplayFrom
from streamer.sinks.urls import InvalidSinkUrl, SinkUrl
from streamer.wire import decode_event, encode_event

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


def message_id(event: SinkEvent) -> str:
    if isinstance(event, TradeEvent):
        return f"{event.symbol}:{event.trade_id}"
    return f"{event.symbol}:gap:{event.first_missing_id}-{event.last_missing_id}"


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

    @property
    def name(self) -> str:
        return self.url.label

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
        self._js = js

    async def _on_ack(self, message: Msg) -> None:
        acks = self._acks
        if acks is not None and message.subject == acks.subject:
            acks.add(message)  # an ack of an earlier, abandoned attempt is ignored

    async def publish(self, events: Sequence[SinkEvent]) -> None:
        await self.open()
        client = self._client
        assert client is not None
        prefix = self.prefix
        try:
            async with asyncio.timeout(self.timeout):
                for start in range(0, len(events), WINDOW):
                    window = events[start : start + WINDOW]
                    self._sent += 1
                    acks = self._acks = _Acks(f"{self._inbox}.{self._sent}", len(window))
                    for event in window:
                        subject = trades_subject if isinstance(event, TradeEvent) else gaps_subject
                        await client.publish(
                            subject(prefix, event.symbol),
                            encode_event(event),
                            reply=acks.subject,
                            headers={MSG_ID: message_id(event)},
                        )
                    await acks.done
                    self.duplicates += acks.duplicates
                    if acks.error is not None:
                        self._js = None  # the stream may be gone: the retry opens it again
                        raise SinkUnavailable(f"{self.name}: {acks.error}")
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
