"""The websocket protocol's bookkeeping, kept free of I/O so every limit can be tested by the clock.

The exchange closes a connection (code 1008) that sends more than 5 messages in a second, pongs
included, and refuses an IP that opens more than 300 connections in 5 minutes. Everything that
decides *what* to send and *when* lives here: the per-connection set of streams and the batched
SUBSCRIBE/UNSUBSCRIBE requests that move it toward the wanted set, the send window, the
connection-attempt window, the reconnect backoff, and the cool-downs after a 429 or 418. The
asyncio side only does what `ConnectionState.poll` says, at the time it says.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec

from streamer.stream.pacing import Backoff, Clock, SlidingWindow
from streamer.symbols import stream_symbol, symbol_of_stream

MAX_STREAMS_PER_CONNECTION = 1024
MESSAGES_PER_SECOND = 5
CONTROL_MESSAGES_PER_SECOND = 4
"""What a connection sends by default: one under the exchange's 5, pongs included, because a
first message delayed on a real network can land in the next second of the exchange's count."""
CONNECTS_PER_WINDOW = 300
CONNECT_WINDOW_S = 300.0
HISTORICAL_TRADES_WEIGHT = 25


def stream_name(symbol: str) -> str:
    """The trade stream of a symbol: `stream_name("ETHUSDT") == "ethusdt@trade"` (ASCII only)."""
    return stream_symbol(symbol) + "@trade"


def symbol_of(stream: str) -> str:
    """The symbol of a trade stream: `symbol_of("ethusdt@trade") == "ETHUSDT"` (ASCII only)."""
    return symbol_of_stream(stream.partition("@")[0])


def cooldown_for(status: int, retry_after: float | None) -> float | None:
    """How long to stay away after an HTTP refusal of the handshake (None: not a rate limit).

    429 means "too many requests" and 418 means the IP is banned for repeating it; both say how
    long in Retry-After, and both get a conservative default when they do not.
    """
    if status == 429:
        return retry_after if retry_after is not None else 60.0
    if status == 418:
        return retry_after if retry_after is not None else 300.0
    return None


@dataclass(frozen=True)
class Request:
    """A SUBSCRIBE or UNSUBSCRIBE request ready to send."""

    id: int
    method: str
    streams: tuple[str, ...]

    def encode(self) -> bytes:
        return msgspec.json.encode({"method": self.method, "params": self.streams, "id": self.id})


@dataclass(frozen=True)
class Pong:
    """The answer to a server ping, echoing its payload."""

    payload: bytes


Outgoing = Request | Pong


@dataclass
class ReplyOutcome:
    """What a reply changed: streams now live, streams refused alone (now parked), and why."""

    confirmed: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()
    error: object = None


@dataclass
class ConnectionState:
    """One connection's streams, requests in flight, and outgoing-message budget.

    `wanted` is what the owner asked for; `expected` is what the server will carry once every
    request in flight is answered; `live` is what the server confirmed (or took from the URL).
    `poll` turns the difference between `wanted` and `expected` into as few requests as possible,
    many streams per request, and paces everything (pongs first) through the send window.

    A refused SUBSCRIBE says nothing about which of its streams the exchange objects to, so a
    refused batch is split in halves and each half asked for again; a stream refused on its own
    is `parked` (still wanted, not asked for) until its own capped, jittered backoff expires.
    The other streams of the connection are never held back by it.
    """

    clock: Clock
    messages_per_second: int = CONTROL_MESSAGES_PER_SECOND
    streams_per_message: int = 200
    margin: float = 0.1
    retry_base: float = 0.5
    retry_cap: float = 30.0
    wanted: set[str] = field(default_factory=set)
    expected: set[str] = field(default_factory=set)
    live: set[str] = field(default_factory=set)
    in_flight: dict[int, Request] = field(default_factory=dict)
    sent: int = 0
    _window: SlidingWindow = field(init=False)
    _pong: bytes | None = field(default=None, init=False)
    _refresh: set[str] = field(default_factory=set, init=False)
    _next_id: int = field(default=1, init=False)
    _parked: dict[str, float] = field(default_factory=dict, init=False)
    _backoffs: dict[str, Backoff] = field(default_factory=dict, init=False)
    _split: list[tuple[str, ...]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self._window = SlidingWindow(self.messages_per_second, 1.0, self.margin)

    def add(self, streams: Iterable[str]) -> None:
        """Ask for these streams."""
        self.wanted.update(streams)

    def remove(self, streams: Iterable[str]) -> None:
        """Stop asking for these streams."""
        gone = set(streams)
        self.wanted -= gone
        for stream in gone:
            self._parked.pop(stream, None)
            self._backoffs.pop(stream, None)

    @property
    def parked(self) -> frozenset[str]:
        """Wanted streams the exchange refused, waiting for their retry time."""
        return frozenset(self._parked)

    def url_streams(self) -> list[str]:
        """The streams a new socket's URL should carry: every wanted one not parked."""
        return sorted(self.wanted - self._parked.keys())

    def resubscribe(self, streams: Iterable[str]) -> None:
        """Unsubscribe and subscribe again these streams (a suspect stream gets a fresh start)."""
        fresh = set(streams) & self.wanted & self.expected
        self._refresh |= fresh

    def connected(self, url_streams: Iterable[str]) -> None:
        """A new socket is open with `url_streams` already subscribed through its URL."""
        self.expected = set(url_streams)
        self.live = set(self.expected)
        self.in_flight.clear()
        self._refresh.clear()
        self._pong = None

    def ping(self, payload: bytes) -> None:
        """The server pinged; the latest payload is the one to echo (older pings are covered)."""
        self._pong = payload

    def on_reply(self, request_id: object, error: object) -> ReplyOutcome:
        """Apply the server's answer to one of our requests."""
        if not isinstance(request_id, int):
            return ReplyOutcome()
        request = self.in_flight.pop(request_id, None)
        if request is None:
            return ReplyOutcome()
        if error is not None:
            if request.method == "SUBSCRIBE":
                return self._refused(request.streams, error)
            return ReplyOutcome(error=error)
        if request.method == "SUBSCRIBE":
            self.live.update(request.streams)
            for stream in request.streams:
                self._backoffs.pop(stream, None)
            return ReplyOutcome(confirmed=request.streams)
        self.live.difference_update(request.streams)
        return ReplyOutcome()

    def _refused(self, streams: tuple[str, ...], error: object) -> ReplyOutcome:
        self.expected.difference_update(streams)
        wanted = tuple(s for s in streams if s in self.wanted)
        if len(wanted) > 1:
            half = len(wanted) // 2
            self._split += [wanted[:half], wanted[half:]]
            return ReplyOutcome(error=error)
        now = self.clock()
        for stream in wanted:
            backoff = self._backoffs.get(stream)
            if backoff is None:
                backoff = self._backoffs[stream] = Backoff(self.retry_base, self.retry_cap)
            self._parked[stream] = now + backoff.next_delay()
        return ReplyOutcome(refused=wanted, error=error)

    def _unpark(self, now: float) -> float | None:
        """Release the parked streams whose time has come; seconds until the next one is due."""
        due = [stream for stream, at in self._parked.items() if at <= now]
        for stream in due:
            del self._parked[stream]
        if not self._parked:
            return None
        return min(self._parked.values()) - now

    def _next_request(self) -> Request | None:
        unsub = sorted((self.expected - self.wanted) | self._refresh)
        if unsub:
            batch = tuple(unsub[: self.streams_per_message])
            self.expected.difference_update(batch)
            self._refresh.difference_update(batch)
            return self._request("UNSUBSCRIBE", batch)
        while self._split:
            pending = self.wanted - self.expected - self._parked.keys()
            batch = tuple(s for s in self._split.pop(0) if s in pending)
            if batch:
                self.expected.update(batch)
                return self._request("SUBSCRIBE", batch)
        sub = sorted(self.wanted - self.expected - self._parked.keys())
        if sub:
            batch = tuple(sub[: self.streams_per_message])
            self.expected.update(batch)
            return self._request("SUBSCRIBE", batch)
        return None

    def _request(self, method: str, streams: tuple[str, ...]) -> Request:
        request = Request(self._next_id, method, streams)
        self._next_id += 1
        self.in_flight[request.id] = request
        return request

    def has_work(self) -> bool:
        """Whether anything is waiting to be sent now (parked streams wait for their time)."""
        return (
            self._pong is not None
            or bool(self._refresh)
            or bool(self.expected - self.wanted)
            or bool(self.wanted - self.expected - self._parked.keys())
        )

    def poll(self) -> tuple[list[Outgoing], float | None]:
        """Messages to send now, and seconds until more may be sent (None: nothing waiting)."""
        out: list[Outgoing] = []
        while True:
            now = self.clock()
            retry = self._unpark(now)
            if not self.has_work():
                return out, retry
            wait = self._window.delay(now)
            if wait > 0:
                return out, wait
            message: Outgoing | None
            if self._pong is not None:
                message, self._pong = Pong(self._pong), None
            else:
                message = self._next_request()
            if message is None:
                return out, None
            self._window.record(now)
            self.sent += 1
            out.append(message)
