"""Clients of a running service: its HTTP API (the CLI, scripts) and its `/ws/trades` events
(programs on other machines that want trades without running a broker)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import httpx
import msgspec
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from streamer.errors import StreamerError
from streamer.events import Dropped, GapNotice, TradeEvent
from streamer.symbols import normalize_symbol, url_quote

log = logging.getLogger(__name__)

POLICY_VIOLATION = 1008


class ServiceNotRunning(StreamerError, ConnectionError):
    """Nothing answers at the service's address."""


class ApiError(StreamerError, RuntimeError):
    """The service answered with an error; the message is the service's own explanation."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code


class ServiceClient:
    """Calls the API at `base_url`, with the bearer token when one is configured."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 10.0) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout)

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def _call(self, method: str, path: str, json: Any = None, **params: Any) -> Any:
        try:
            response = self._http.request(method, path, params=params or None, json=json)
        except httpx.ConnectError as error:
            raise ServiceNotRunning(f"no service answers at {self.base_url}") from error
        except httpx.TransportError as error:
            raise ApiError(0, f"the service at {self.base_url} did not answer: {error!r}") from None
        try:
            body = response.json()
        except ValueError:
            raise ApiError(
                response.status_code,
                f"{self.base_url} answered HTTP {response.status_code} with something that is "
                "not the streamer API (is another program on this port?)",
            ) from None
        if response.status_code >= 400 and path != "/api/health":
            detail = body.get("detail") if isinstance(body, dict) else None
            raise ApiError(response.status_code, str(detail or f"HTTP {response.status_code}"))
        return body

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/api/health")
        return result

    def setting(self, symbol: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/api/settings/{url_quote(symbol)}")
        return result

    def settings(self, *, active: bool = False) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/api/settings", active=active)
        return result

    def start(self, symbol: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/api/settings/{url_quote(symbol)}/start")
        return result

    def stop(self, symbol: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/api/settings/{url_quote(symbol)}/stop")
        return result

    def start_many(self, symbols: list[str]) -> dict[str, Any]:
        """One call for many symbols: `changed`, `unchanged` and `failed` (with why)."""
        result: dict[str, Any] = self._call("POST", "/api/settings/start", json=symbols)
        return result

    def stop_many(self, symbols: list[str]) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/api/settings/stop", json=symbols)
        return result


class Notice(msgspec.Struct, frozen=True, tag="notice", tag_field="kind"):
    """The service's word about a symbol, e.g. that it is not streaming (so no trades come)."""

    symbol: str
    message: str


class _WireTrade(msgspec.Struct, frozen=True, tag="trade", tag_field="kind"):
    """A trade as `/ws/trades` sends it: long field names, decimals as strings."""

    event_type: str
    event_time: int
    symbol: str
    trade_id: int
    price: Decimal
    quantity: Decimal
    trade_time: int
    buyer_market_maker: bool
    buyer_order_id: int | None = None
    seller_order_id: int | None = None
    backfilled: bool = False


class _WireGap(GapNotice, frozen=True, tag="gap", tag_field="kind"):
    pass


class _WireDropped(Dropped, frozen=True, tag="dropped", tag_field="kind"):
    pass


ClientEvent = TradeEvent | GapNotice | Dropped | Notice
_decode = msgspec.json.Decoder(_WireTrade | _WireGap | _WireDropped | Notice).decode


class TradesRefused(StreamerError, ConnectionError):
    """The service refused the subscription (an unknown or malformed symbol): retrying cannot
    help, so the client stops with the service's reason."""


class TradesClient:
    """The events of a service's `/ws/trades`, across reconnects, each trade once and in order.

    ```python
    async for event in TradesClient("ws://127.0.0.1:8000", ["ETHUSDT"]):
        ...
    ```

    After a lost connection it reconnects with a capped backoff and asks the service to resume
    after the last trade id it saw of each symbol; the service fills the difference from the
    exchange's history or announces it with a `GapNotice`. A frame that does not decode is
    dropped with a warning rather than handed on.
    """

    def __init__(
        self,
        base_url: str,
        symbols: Iterable[str] = (),
        *,
        token: str | None = None,
        retry: float = 0.5,
        retry_cap: float = 10.0,
    ) -> None:
        self.url = base_url.rstrip("/") + "/ws/trades"
        self.symbols = [normalize_symbol(symbol) for symbol in symbols]
        self.positions: dict[str, int] = {}
        self.reconnects = 0
        self._headers = {"authorization": f"Bearer {token}"} if token else {}
        self._retry = retry
        self._retry_cap = retry_cap

    def _url_now(self) -> str:
        query = {}
        if self.symbols:
            query["symbols"] = ",".join(self.symbols)
        if self.positions:
            query["after"] = ",".join(f"{s}:{n}" for s, n in self.positions.items())
        return self.url + ("?" + urlencode(query) if query else "")

    async def __aiter__(self) -> AsyncIterator[ClientEvent]:
        delay = self._retry
        while True:
            try:
                async with connect(
                    self._url_now(), additional_headers=self._headers, max_size=None
                ) as socket:
                    delay = self._retry
                    async for message in socket:
                        event = self._event(message)
                        if event is not None:
                            yield event
                    reason = f"closed ({socket.close_code})"
            except ConnectionClosed as closed:
                if closed.rcvd is not None and closed.rcvd.code == POLICY_VIOLATION:
                    raise TradesRefused(closed.rcvd.reason) from None
                reason = "closed" if closed.rcvd is None else f"closed ({closed.rcvd.code})"
            except (OSError, InvalidHandshake, TimeoutError) as error:
                reason = str(error) or type(error).__name__
            self.reconnects += 1
            log.warning("%s: %s; reconnecting in %.1f s", self.url, reason, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._retry_cap)

    def _event(self, message: str | bytes) -> ClientEvent | None:
        try:
            wire: _WireTrade | _WireGap | _WireDropped | Notice = _decode(message)
        except msgspec.ValidationError as error:
            log.warning("%s: dropped a frame that is not an event (%s)", self.url, error)
            return None
        if isinstance(wire, _WireTrade):
            trade = TradeEvent(**msgspec.structs.asdict(wire))
            self.positions[trade.symbol] = trade.trade_id
            return trade
        if isinstance(wire, GapNotice):
            self.positions[wire.symbol] = wire.last_missing_id
        return wire
