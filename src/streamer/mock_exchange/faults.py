"""Faults a test can switch on while the mock runs, from Python or from the admin HTTP endpoint.

Connection faults act on live connections (all of them, or one by id); market faults act on a
symbol's stream (skip or repeat the next trade ids; the history endpoint keeps every trade, so a
skipped id is a gap that a client can fill); server faults act on new requests (refuse them with
HTTP 429/418 and Retry-After, cut them without an answer, answer REST slowly). Every switch can be
switched off again: the admin endpoint is never refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from streamer.mock_exchange.exchange import Exchange
from streamer.mock_exchange.market import Market
from streamer.symbols import ascii_upper

if TYPE_CHECKING:
    from streamer.mock_exchange.connection import MockConnection


class FaultError(ValueError):
    """A fault request that names an unknown fault, connection or symbol, or a bad value."""


@dataclass(frozen=True)
class Refusal:
    """How new HTTP requests are refused: status 429 or 418, with a Retry-After in seconds."""

    status: int
    retry_after: int


class Faults:
    """The switchable faults of one mock exchange."""

    def __init__(
        self,
        exchange: Exchange,
        connections: Callable[[], Iterable[MockConnection]],
    ) -> None:
        self._exchange = exchange
        self._connections = connections
        self.refusal: Refusal | None = None
        self.refusing_tcp = False
        self.rest_delay = 0.0

    def _targets(self, connection: int | None) -> list[MockConnection]:
        found = [c for c in self._connections() if connection is None or c.number == connection]
        if connection is not None and not found:
            raise FaultError(f"no open connection with id {connection}")
        return found

    def drop(self, connection: int | None = None) -> int:
        """Cut connections without a close handshake, as a network failure would."""
        targets = self._targets(connection)
        for target in targets:
            target.drop()
        return len(targets)

    def stall(self, connection: int | None = None) -> int:
        """Freeze connections: no trades, no pings, no reading (so no pongs); the socket stays."""
        targets = self._targets(connection)
        for target in targets:
            target.stall()
        return len(targets)

    def resume(self, connection: int | None = None) -> int:
        """Undo `stall`."""
        targets = self._targets(connection)
        for target in targets:
            target.resume()
        return len(targets)

    def malformed_frame(self, connection: int | None = None) -> int:
        """Send one complete text frame whose payload is not valid JSON; the stream goes on."""
        targets = self._targets(connection)
        for target in targets:
            target.send_malformed()
        return len(targets)

    def truncated_frame(self, connection: int | None = None) -> int:
        """Send the first half of a frame, then cut the connection."""
        targets = self._targets(connection)
        for target in targets:
            target.send_truncated()
        return len(targets)

    def server_shutdown(
        self, connection: int | None = None, close_after: float | None = None
    ) -> int:
        """Send Binance's `serverShutdown` event, then close after `close_after` seconds."""
        grace = self._exchange.config.shutdown_grace if close_after is None else close_after
        targets = self._targets(connection)
        for target in targets:
            target.server_shutdown(self._exchange.now_ms(), grace)
        return len(targets)

    def skip_ids(self, symbol: str, count: int = 1) -> list[int]:
        """The next `count` trades of `symbol` are left out of every stream; returns their ids."""
        market = self._market(symbol, count)
        span = market.skip(count)
        return [market.id_of(i) for i in span]

    def duplicate_ids(self, symbol: str, count: int = 1) -> list[int]:
        """The next `count` trades of `symbol` are sent twice on every stream; returns their ids."""
        market = self._market(symbol, count)
        span = market.duplicate(count)
        return [market.id_of(i) for i in span]

    def _market(self, symbol: str, count: int) -> Market:
        if count < 1:
            raise FaultError(f"count must be at least 1, not {count}")
        market = self._exchange.market(ascii_upper(symbol))
        if market is None:
            raise FaultError(f"unknown symbol {symbol!r}")
        return market

    def refuse(self, status: int = 429, retry_after: int = 1) -> None:
        """Answer every new REST request and websocket upgrade with `status` and Retry-After."""
        if status not in (418, 429):
            raise FaultError(f"refusal status must be 429 or 418, not {status}")
        self.refusal = Refusal(status, max(0, retry_after))

    async def refuse_tcp(self) -> None:
        """Cut every new request and upgrade without an answer; open websockets carry on.

        The port keeps listening, so the admin endpoint can still switch this off again.
        """
        self.refusing_tcp = True

    async def accept(self) -> None:
        """Undo `refuse` and `refuse_tcp`."""
        self.refusal = None
        self.refusing_tcp = False

    def slow_rest(self, seconds: float) -> None:
        """Delay every REST answer by `seconds` (0 switches it off)."""
        if seconds < 0:
            raise FaultError(f"delay must not be negative, not {seconds}")
        self.rest_delay = seconds

    def state(self) -> dict[str, Any]:
        return {
            "refusal": None if self.refusal is None else vars(self.refusal),
            "refusing_tcp": self.refusing_tcp,
            "rest_delay": self.rest_delay,
        }

    async def apply(self, name: str, params: dict[str, str]) -> Any:
        """Run the fault `name` with string parameters (the admin endpoint's query)."""
        try:
            if name in ("drop", "stall", "resume", "malformed_frame", "truncated_frame"):
                action: Callable[[int | None], int] = getattr(self, name)
                return action(_optional_int(params.get("connection")))
            if name == "server_shutdown":
                after = params.get("close_after")
                return self.server_shutdown(
                    _optional_int(params.get("connection")), None if after is None else float(after)
                )
            if name in ("skip_ids", "duplicate_ids"):
                if "symbol" not in params:
                    raise FaultError(f"{name} needs a symbol")
                return getattr(self, name)(params["symbol"], int(params.get("count", "1")))
            if name == "refuse":
                if params.get("mode") == "tcp":
                    await self.refuse_tcp()
                    return None
                self.refuse(int(params.get("status", "429")), int(params.get("retry_after", "1")))
                return None
            if name == "accept":
                await self.accept()
                return None
            if name == "slow_rest":
                self.slow_rest(float(params.get("seconds", "0")))
                return None
        except ValueError as exc:
            raise FaultError(str(exc)) from None
        raise FaultError(f"unknown fault {name!r}")


def _optional_int(value: str | None) -> int | None:
    return None if value is None or value == "" else int(value)
