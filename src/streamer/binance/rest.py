"""Binance's REST API: the exchange's symbols (for the seed) and its trade history (for gaps).

Only public market-data endpoints are used, so no API key is needed: `GET /api/v3/exchangeInfo`
and `GET /api/v3/historicalTrades`, whose security type is NONE in the current spot API docs
(it needed a MARKET_DATA key until 2023). `historicalTrades` is the one history that shares the
trade ids of the `<symbol>@trade` stream; `aggTrades` has ids of its own, so it cannot fill gaps.

Every response is validated (msgspec) before anyone sees it, and every failure is a `RestError`
whose message is one line a user can act on: retried timeouts and 5xx, Retry-After honoured on
429/418 up to a cap, and 451/403 explained as Binance refusing the location, with alternatives.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Self

import httpx
import msgspec

from streamer import __version__
from streamer.binance.budget import RestBudget
from streamer.config import BINANCE_REST_URL
from streamer.errors import ExchangeError, HistoryUnavailable
from streamer.symbols import InvalidSymbol, exchange_symbol, normalize_symbol
from streamer.text import one_line

log = logging.getLogger(__name__)

MARKET_DATA_URL = "https://data-api.binance.vision"
MAX_HISTORY_PAGE = 1000
EXCHANGE_INFO_WEIGHT = 20
SYMBOL_INFO_WEIGHT = 2
"""`exchangeInfo?symbol=...` costs 2 (rest-api.md)."""
TRADES_WEIGHT = 25
"""`historicalTrades` and `trades` both cost 25 (rest-api.md)."""


class RestError(ExchangeError):
    """A request to Binance's REST API failed for good; `str()` says why in one line."""


class SymbolInfo(msgspec.Struct, frozen=True, rename="camel"):
    """One symbol of exchangeInfo; only what this project reads, the rest is ignored."""

    symbol: str
    status: str
    base_asset: str
    quote_asset: str


class ExchangeInfo(msgspec.Struct, frozen=True, rename="camel"):
    """A validated `GET /api/v3/exchangeInfo` response."""

    timezone: str
    server_time: int
    symbols: list[SymbolInfo]


class HistoricalTrade(msgspec.Struct, frozen=True, rename="camel"):
    """One trade of `GET /api/v3/historicalTrades`; prices and quantities exact, as sent."""

    id: int
    price: Decimal
    qty: Decimal
    time: int  # milliseconds since the epoch
    is_buyer_maker: bool
    quote_qty: Decimal | None = None
    is_best_match: bool | None = None


_exchange_info = msgspec.json.Decoder(ExchangeInfo)
_trades = msgspec.json.Decoder(list[HistoricalTrade])


def decode_exchange_info(body: bytes, source: str) -> ExchangeInfo:
    """Validate an exchangeInfo body, or raise `RestError` saying what `source` got wrong.

    Every symbol must be a well-formed Binance symbol, so nothing malformed can reach the
    database: one bad entry rejects the whole body.
    """
    try:
        info = _exchange_info.decode(body)
    except msgspec.ValidationError as exc:
        raise RestError(f"{source} is not a Binance exchangeInfo: {one_line(str(exc))}") from None
    except msgspec.DecodeError as exc:
        raise RestError(
            f"{source} is not valid JSON (truncated or not JSON at all): {one_line(str(exc))}"
        ) from None
    for index, entry in enumerate(info.symbols):
        try:
            exchange_symbol(entry.symbol)  # exactly as listed: a listed `ETH/BTC` is malformed
        except InvalidSymbol as exc:
            raise RestError(
                f"{source} has a malformed symbol at `$.symbols[{index}]`: {exc}"
            ) from None
    return info


def _full_jitter(delay: float) -> float:
    return random.uniform(delay / 2, delay)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: exponential backoff with jitter, and the longest Retry-After obeyed.

    `sleep` and `jitter` are injectable so tests run instantly and see the exact waits.
    """

    attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 10.0
    max_retry_after: float = 120.0
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep)
    jitter: Callable[[float], float] = field(default=_full_jitter)

    def delay(self, attempt: int) -> float:
        """The pause after failed attempt number `attempt` (0-based)."""
        return self.jitter(min(self.max_backoff, self.backoff * 2**attempt))


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asked us to wait: Retry-After as seconds or as an HTTP date."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _binance_message(response: httpx.Response) -> str:
    """Binance's own `{"code": ..., "msg": ...}` explanation, when the body has one."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict) and isinstance(body.get("msg"), str):
        code = body.get("code")
        return f": {one_line(body['msg'])}" + (f" (code {code})" if code is not None else "")
    return ""


class BinanceRest:
    """An asyncio client of Binance's public REST endpoints (or of anything that mimics them)."""

    def __init__(
        self,
        base_url: str = BINANCE_REST_URL,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        budget: RestBudget | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.budget = budget
        self._history_missing = False
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": f"streamer/{__version__}", "Accept": "application/json"},
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def exchange_info(self) -> ExchangeInfo:
        """The exchange's symbols, validated; a body that is not exchangeInfo is a RestError."""
        path = "/api/v3/exchangeInfo"
        body = await self._get(path, weight=EXCHANGE_INFO_WEIGHT)
        return decode_exchange_info(body, f"the response of {self.base_url}{path}")

    async def symbol_status(self, symbol: str) -> str:
        """The exchange's trading status of one symbol: TRADING, HALT, BREAK, END_OF_DAY, ..."""
        path = "/api/v3/exchangeInfo"
        name = normalize_symbol(symbol)
        body = await self._get(path, {"symbol": name}, weight=SYMBOL_INFO_WEIGHT)
        info = decode_exchange_info(body, f"the response of {self.base_url}{path}")
        for entry in info.symbols:
            if entry.symbol == name:
                return entry.status
        raise RestError(f"{self.base_url}{path} does not list {name}")

    async def historical_trades(
        self, symbol: str, from_id: int, limit: int = MAX_HISTORY_PAGE
    ) -> list[HistoricalTrade]:
        """Up to `limit` (at most 1000) trades of `symbol` with ids from `from_id` on, in order.

        A host without the endpoint (404) raises `HistoryUnavailable`, then and on every later
        call without asking again, so the caller can fall back to `recent_trades`.
        """
        if not 1 <= limit <= MAX_HISTORY_PAGE:
            raise ValueError(f"limit must be 1 to {MAX_HISTORY_PAGE}, not {limit}")
        if from_id < 0:
            raise ValueError(f"from_id must not be negative, not {from_id}")
        path = "/api/v3/historicalTrades"
        if self._history_missing:
            raise HistoryUnavailable(f"{self.base_url} does not serve {path}", status=404)
        params: dict[str, str | int] = {
            "symbol": normalize_symbol(symbol),
            "fromId": from_id,
            "limit": limit,
        }
        try:
            body = await self._get(path, params, weight=TRADES_WEIGHT)
        except RestError as error:
            if error.status != 404:
                raise
            self._history_missing = True
            raise HistoryUnavailable(f"{self.base_url} does not serve {path}", status=404) from None
        return self._trade_list(body, path)

    async def recent_trades(
        self, symbol: str, limit: int = MAX_HISTORY_PAGE
    ) -> list[HistoricalTrade]:
        """The latest `limit` (at most 1000) trades of `symbol`, oldest first (`/api/v3/trades`)."""
        if not 1 <= limit <= MAX_HISTORY_PAGE:
            raise ValueError(f"limit must be 1 to {MAX_HISTORY_PAGE}, not {limit}")
        path = "/api/v3/trades"
        params: dict[str, str | int] = {"symbol": normalize_symbol(symbol), "limit": limit}
        return self._trade_list(await self._get(path, params, weight=TRADES_WEIGHT), path)

    def _trade_list(self, body: bytes, path: str) -> list[HistoricalTrade]:
        try:
            return _trades.decode(body)
        except msgspec.DecodeError as exc:
            raise RestError(
                f"the response of {self.base_url}{path} is not a trade list: {one_line(str(exc))}"
            ) from None

    async def _get(
        self, path: str, params: Mapping[str, str | int] | None = None, *, weight: int = 1
    ) -> bytes:
        """The body of a successful GET, after retrying what is worth retrying.

        With a `budget`, every attempt first reserves its `weight` there and every answer
        reports back to it, so a 429 makes all requests of the process wait, not this one only.
        """
        url = f"{self.base_url}{path}"
        policy = self._retry
        budget = self.budget
        reason = "no attempt made"
        for attempt in range(policy.attempts):
            final = attempt + 1 == policy.attempts
            if budget is not None:
                await budget.spend(weight)
            try:
                response = await self._client.get(path, params=params)
            except httpx.TimeoutException:
                reason = f"no answer within {self._timeout:g} s"
            except httpx.TransportError as exc:
                reason = f"cannot connect ({one_line(str(exc)) or type(exc).__name__})"
            else:
                status = response.status_code
                if budget is not None:
                    limited = status in (418, 429)
                    budget.observe(
                        status, response.headers, _retry_after(response) if limited else None
                    )
                if status < 300:
                    return response.content
                if status in (403, 451):
                    raise RestError(self._refused(status), status=status)
                if status in (418, 429):
                    wait = _retry_after(response)
                    if wait is None:
                        wait = policy.delay(attempt)
                    if wait > policy.max_retry_after:
                        raise RestError(
                            f"{self.base_url} is rate-limiting this IP (HTTP {status}) and asks to "
                            f"wait {wait:g} s, longer than the {policy.max_retry_after:g} s this "
                            "client waits; try again later",
                            status=status,
                        )
                    reason = f"rate-limited (HTTP {status})"
                    if final:
                        break
                    log.warning(
                        "GET %s: HTTP %s, waiting %g s as the server asks", url, status, wait
                    )
                    if budget is None:
                        await policy.sleep(wait)
                    continue
                if status < 500:
                    raise RestError(
                        f"GET {url} was rejected with HTTP {status}{_binance_message(response)}",
                        status=status,
                    )
                reason = f"HTTP {status}{_binance_message(response)}"
            if final:
                break
            delay = policy.delay(attempt)
            log.warning("GET %s: %s; retrying in %.1f s", url, reason, delay)
            await policy.sleep(delay)
        raise RestError(f"GET {url} failed after {policy.attempts} attempts: {reason}")

    def _refused(self, status: int) -> str:
        return (
            f"{self.base_url} refuses requests from this location (HTTP {status}); use Binance's "
            f"public market-data host {MARKET_DATA_URL}, a saved exchangeInfo response "
            "(`streamer seed --from-file`), or the local mock exchange (`streamer mock-exchange`)"
        )
