"""One combined-stream websocket connection, kept alive forever, carrying a set of streams.

Frames are decoded and dispatched inside picows's read callback: a trade goes from the socket
buffer to its symbol's channel and on to the subscribers without a queue, a task switch or a
copy of the payload. Everything that is not a trade (pings, replies, `serverShutdown`, garbage)
takes the slow path. The connection's task only drives the pure `ConnectionState`: it sends what
the state allows, watches for a silent (dead) socket, and rotates the socket before the
exchange's 24 h cut or when asked to, make-before-break.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Iterable

import msgspec
from picows import (
    WSCloseCode,
    WSError,
    WSFrame,
    WSHandshakeError,
    WSListener,
    WSMsgType,
    WSTransport,
    ws_connect,
)

from streamer.binance.config import StreamerConfig
from streamer.binance.decode import (
    Invalid,
    Malformed,
    OtherEvent,
    Reply,
    ServerShutdown,
    classify,
    decode_envelope,
)
from streamer.binance.protocol import ConnectionState, Pong, cooldown_for, symbol_of
from streamer.logs import RateLimitedLog
from streamer.stream.channel import SymbolChannel
from streamer.stream.market import ConnectionInfo
from streamer.stream.pacing import Backoff, SlidingWindow
from streamer.stream.stats import LiveState

log = logging.getLogger(__name__)

_PING = WSMsgType.PING
_CLOSE = WSMsgType.CLOSE
_NOT_A_TRADE = (msgspec.DecodeError, RecursionError)
"""What the trade decode raises for any other frame; deeply nested JSON raises RecursionError."""


def flush(dirty: list[SymbolChannel]) -> None:
    """Publish every channel's collected trades and empty the list of touched channels."""
    for channel in dirty:
        try:
            channel.flush()
        except Exception as exc:
            channel.fail(exc)
    dirty.clear()


class ConnectGate:
    """The process-wide door every new connection goes through.

    It spaces connection attempts so that no 5-minute window holds more than the exchange's
    300, and keeps everyone out during a cool-down after a 429/418.
    """

    def __init__(self, config: StreamerConfig, clock: Callable[[], float]) -> None:
        self._window = SlidingWindow(config.connects_per_window, config.connect_window)
        self._clock = clock
        self._cool_until = 0.0
        self._lock = asyncio.Lock()
        self.attempts = 0
        self.cooldowns = 0

    def cool_down(self, seconds: float) -> None:
        self.cooldowns += 1
        self._cool_until = max(self._cool_until, self._clock() + seconds)

    async def enter(self) -> None:
        async with self._lock:
            while True:
                now = self._clock()
                wait = max(self._window.delay(now), self._cool_until - now)
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            self._window.record(self._clock())
            self.attempts += 1


class _Listener(WSListener):
    """picows callbacks for one socket; trades are handled right here, synchronously."""

    def __init__(self, connection: StreamConnection) -> None:
        self.connection = connection
        self.channel_of = connection.routes.get
        self.dirty = connection.dirty
        self.reads = 0
        self.retired = False

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        # Decoding comes before looking at the frame type: almost every frame is a trade, and a
        # ping, pong or close payload never decodes as a trade envelope, so those only pay for a
        # failed decode while every trade saves the cost of building the type enum.
        try:
            trade = decode_envelope(frame.get_payload_as_memoryview()).data
        except _NOT_A_TRADE:
            self._not_a_trade(transport, frame)
        else:
            channel = self.channel_of(trade.symbol)
            if channel is not None:
                try:
                    channel.on_trade(trade)
                except Exception as exc:
                    channel.fail(exc)
        if frame.last_in_buffer:
            self.reads += 1
            if self.dirty:
                flush(self.dirty)

    def _not_a_trade(self, transport: WSTransport, frame: WSFrame) -> None:
        msg_type = frame.msg_type
        if msg_type is _PING:
            if not self.retired:
                self.connection.on_ping(frame.get_payload_as_bytes())
        elif msg_type is _CLOSE:
            transport.send_close(WSCloseCode.OK)
            transport.disconnect()
        elif msg_type is not WSMsgType.PONG:
            self.connection.on_control(frame.get_payload_as_bytes(), self)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.connection.kick()


class StreamConnection:
    """A slot of up to `streams_per_connection` streams that stays connected whatever happens.

    Its task reconnects with jittered backoff through the process-wide `ConnectGate`, puts every
    wanted stream in the URL of each new socket (no SUBSCRIBE needed), and moves the live set
    toward the wanted one with batched requests paced at 5 messages/s, pongs included. A stream
    the exchange refuses is a fact about that stream, not a failure of its worker: it shows as
    backoff and is asked for again on its own schedule; once the exchange has refused a whole
    URL (`by_subscribe`), the connection asks for its streams by request, where a refusal names
    the culprit.
    """

    def __init__(
        self,
        name: str,
        config: StreamerConfig,
        routes: dict[str, SymbolChannel],
        dirty: list[SymbolChannel],
        gate: ConnectGate,
        clock: Callable[[], float],
        on_refused: Callable[[StreamConnection, str], None] | None = None,
    ) -> None:
        self.name = name
        self.on_refused = on_refused
        self.config = config
        self.routes = routes
        self.dirty = dirty
        self.gate = gate
        self.clock = clock
        self.state = ConnectionState(
            clock,
            messages_per_second=config.messages_per_second,
            streams_per_message=config.streams_per_message,
            margin=config.send_margin,
            retry_base=config.backoff_base,
            retry_cap=config.backoff_cap,
        )
        self.status = "connecting"
        self.connects = 0
        self.rotations = 0
        self.malformed = 0
        self.connected_at: float | None = None
        self.by_subscribe = False
        self._kick = asyncio.Event()
        self._rotate_requested = False
        self._malformed_log = RateLimitedLog(log)

    # --- called by the hub ---------------------------------------------------------------------

    @property
    def load(self) -> int:
        return len(self.state.wanted)

    def add(self, streams: Iterable[str]) -> None:
        self.state.add(streams)
        self.kick()

    def remove(self, streams: Iterable[str]) -> None:
        self.state.remove(streams)
        self.kick()

    def resubscribe(self, streams: Iterable[str]) -> None:
        self.state.resubscribe(streams)
        self.kick()

    def kick(self) -> None:
        self._kick.set()

    def describe(self) -> ConnectionInfo:
        return ConnectionInfo(
            name=self.name,
            status=self.status,
            streams=len(self.state.wanted),
            live=len(self.state.live),
            connects=self.connects,
            rotations=self.rotations,
            sent=self.state.sent,
            malformed=self.malformed,
            connected_at=self.connected_at,
        )

    # --- called from the read callback ---------------------------------------------------------

    def on_ping(self, payload: bytes) -> None:
        self.state.ping(payload)
        self.kick()

    def on_control(self, frame: bytes, listener: _Listener) -> None:
        message = classify(frame)
        if isinstance(message, Reply):
            if listener.retired:
                return
            outcome = self.state.on_reply(message.id, message.error)
            for stream in outcome.confirmed:
                confirmed = self.routes.get(symbol_of(stream))
                if confirmed is not None:
                    confirmed.set_state(LiveState.STREAMING)
            for stream in outcome.refused:
                log.warning(
                    "%s: the exchange refused %s (%s); retrying it with backoff",
                    self.name,
                    stream,
                    outcome.error,
                )
                refused = self.routes.get(symbol_of(stream))
                if refused is not None:
                    refused.set_state(LiveState.BACKOFF)
                if self.on_refused is not None:
                    self.on_refused(self, stream)
            if outcome.error is not None and not outcome.refused:
                log.info("%s: request %s refused (%s)", self.name, message.id, outcome.error)
            self.kick()
        elif isinstance(message, ServerShutdown):
            log.info("%s: serverShutdown received; rotating", self.name)
            self._rotate_requested = True
            self.kick()
        elif isinstance(message, OtherEvent):
            log.debug("%s: ignoring %s event on %s", self.name, message.event_type, message.stream)
        elif isinstance(message, Invalid):
            channel = self.routes.get(symbol_of(message.stream)) if message.stream else None
            if channel is not None:
                channel.reject(message.reason, message.detail)
            else:
                self._malformed_log.warning(
                    "%s: invalid trade of no streamed symbol (%s)", self.name, message.detail
                )
        elif isinstance(message, Malformed):
            self.malformed += 1
            channel = self.routes.get(symbol_of(message.stream)) if message.stream else None
            if channel is not None:
                channel.malformed += 1
            self._malformed_log.warning(
                "%s: malformed frame (%s): %.120r", self.name, message.reason, frame
            )

    # --- the connection's task -----------------------------------------------------------------

    def _set_channels(self, state: LiveState) -> None:
        routes = self.routes
        for stream in self.state.wanted:
            channel = routes.get(symbol_of(stream))
            if channel is not None:
                channel.set_state(state)

    async def _open(self) -> tuple[WSTransport, _Listener, list[str]]:
        await self.gate.enter()
        streams = [] if self.by_subscribe else self.state.url_streams()
        url = self.config.stream_url(streams)
        transport, listener = await ws_connect(
            lambda: _Listener(self),
            url,
            enable_auto_pong=False,
            websocket_handshake_timeout=self.config.handshake_timeout,
            logger_name="streamer",
        )
        if listener is None:  # picows' answer to a connection closed during the handshake
            raise ConnectionResetError(f"{url}: connection closed during the websocket handshake")
        assert isinstance(listener, _Listener)
        sock = transport.underlying_transport.get_extra_info("socket")
        if sock is not None and self.config.receive_buffer:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.config.receive_buffer)
        self.connects += 1
        return transport, listener, streams

    async def run(self) -> None:
        """Keep a socket open for as long as streams are wanted; returns when none are."""
        backoff = Backoff(self.config.backoff_base, self.config.backoff_cap)
        while self.state.wanted:
            self.status = "connecting"
            self._set_channels(LiveState.CONNECTING)
            try:
                transport, listener, streams = await self._open()
            except (OSError, TimeoutError, WSError) as exc:
                delay = backoff.next_delay()
                self._refused(exc)
                log.warning("%s: connect failed (%s); retrying in %.1fs", self.name, exc, delay)
                self.status = "backoff"
                self._set_channels(LiveState.BACKOFF)
                await asyncio.sleep(delay)
                continue
            lived = await self._serve(transport, listener, streams)
            if lived > max(self.config.dead_after, 10.0):
                backoff.reset()
            if self.state.wanted:
                delay = backoff.next_delay()
                log.warning("%s: disconnected; reconnecting in %.1fs", self.name, delay)
                self.status = "backoff"
                self._set_channels(LiveState.BACKOFF)
                await asyncio.sleep(delay)
        self.status = "closed"

    def _refused(self, exc: BaseException) -> None:
        if isinstance(exc, WSHandshakeError) and exc.response is not None:
            status = exc.response.status
            if 400 <= status < 500 and status not in (418, 429) and not self.by_subscribe:
                # The URL's stream list was refused as a whole; SUBSCRIBE requests are answered
                # one by one, so the stream at fault is found and parked, and the rest stream.
                log.warning(
                    "%s: the exchange refused the stream URL (HTTP %s); subscribing by request",
                    self.name,
                    status,
                )
                self.by_subscribe = True
                return
            headers = exc.response.headers
            retry = headers.get("Retry-After") if headers is not None else None
            try:
                retry_after = float(retry) if retry is not None else None
            except ValueError:
                retry_after = None
            cooldown = cooldown_for(exc.response.status, retry_after)
            if cooldown is not None:
                log.warning(
                    "%s: refused with HTTP %s; no new connection for %.0fs",
                    self.name,
                    exc.response.status,
                    cooldown,
                )
                self.gate.cool_down(cooldown)

    def _became_live(self, streams: list[str]) -> None:
        self.state.connected(streams)
        self.connected_at = self.clock()
        self.status = "connected"
        live, parked = self.state.live, self.state.parked
        for stream in self.state.wanted:
            channel = self.routes.get(symbol_of(stream))
            if channel is not None:
                if stream in live:
                    channel.set_state(LiveState.STREAMING)
                elif stream in parked:
                    channel.set_state(LiveState.BACKOFF)
                else:
                    channel.set_state(LiveState.CONNECTING)

    async def _serve(
        self, transport: WSTransport, listener: _Listener, streams: list[str]
    ) -> float:
        """Drive one socket until it dies; returns how long it lived."""
        self._became_live(streams)
        opened = self.clock()
        seen, quiet_since = listener.reads, opened
        try:
            while True:
                if transport.is_disconnected:
                    return self.clock() - opened
                if not self.state.wanted:
                    transport.send_close(WSCloseCode.OK)
                    transport.disconnect()
                    return self.clock() - opened
                now = self.clock()
                if listener.reads != seen:
                    seen, quiet_since = listener.reads, now
                elif now - quiet_since > self.config.dead_after:
                    log.warning("%s: silent for %.0fs; reconnecting", self.name, now - quiet_since)
                    transport.disconnect(graceful=False)
                    return now - opened
                if self._rotate_requested or now - opened > self.config.rotate_after:
                    rotated = await self._rotate(transport, listener)
                    if rotated is not None:
                        transport, listener = rotated
                        opened = self.clock()
                        seen, quiet_since = listener.reads, opened
                        continue
                wait = self._send(transport)
                timeout = self.config.check_interval if wait is None else min(wait, 1.0)
                self._kick.clear()
                try:
                    async with asyncio.timeout(timeout):
                        await self._kick.wait()
                except TimeoutError:
                    pass
        finally:
            if not transport.is_disconnected:
                transport.disconnect(graceful=False)

    def _send(self, transport: WSTransport) -> float | None:
        out, wait = self.state.poll()
        for message in out:
            if isinstance(message, Pong):
                transport.send_pong(message.payload)
            else:
                transport.send(WSMsgType.TEXT, message.encode())
        return wait

    async def _rotate(
        self, old: WSTransport, old_listener: _Listener
    ) -> tuple[WSTransport, _Listener] | None:
        """Open the replacement socket first, then retire the old one (make-before-break).

        Both sockets deliver during the overlap; the channels drop the duplicates by trade id.
        If the replacement cannot be opened the old socket carries on until it dies.
        """
        self._rotate_requested = False
        try:
            transport, listener, streams = await self._open()
        except (OSError, TimeoutError, WSError) as exc:
            log.warning("%s: rotation failed (%s); keeping the current socket", self.name, exc)
            self._refused(exc)
            return None
        old_listener.retired = True
        self._became_live(streams)
        self.rotations += 1
        old.send_close(WSCloseCode.GOING_AWAY)
        old.disconnect()
        log.info("%s: rotated to a new socket", self.name)
        return transport, listener
