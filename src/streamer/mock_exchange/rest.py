"""Binance's public REST market-data endpoints, answered from the mock's exchange.

Pure request-to-response code: the server hands in the path, query and headers and writes the
reply. Errors use Binance's body `{"code": -11xx, "msg": ...}` with HTTP 400, so a client's error
handling meets the same shapes it will meet in production.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from streamer.mock_exchange.encoding import encode_json
from streamer.mock_exchange.exchange import Exchange
from streamer.mock_exchange.exchange_info import STATUSES
from streamer.mock_exchange.market import AGG_TRADE, TRADE
from streamer.mock_exchange.weights import rate_limits
from streamer.symbols import MAX_LENGTH

JSON_TYPE = "application/json;charset=UTF-8"
MAX_LIMIT = 1000
#: Binance's legal range for `symbol`, plus the non-ASCII letters and digits allowed since 2025-12.
_SYMBOL = re.compile(r"(?:[A-Z0-9\-_.]|[^\x00-\x7f])+")


@dataclass(frozen=True)
class HttpReply:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = (("Content-Type", JSON_TYPE),)


class RestError(Exception):
    """A request Binance would refuse; carries Binance's error code and message."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status

    def reply(self) -> HttpReply:
        return HttpReply(self.status, encode_json({"code": self.code, "msg": self.msg}))


def ok(value: Any) -> HttpReply:
    return HttpReply(200, encode_json(value))


class RestApi:
    """GET /api/v3/{ping,time,exchangeInfo,trades,historicalTrades,aggTrades}."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange

    def handle(self, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> HttpReply:
        """The reply to one GET request; `headers` has lower-case names."""
        micro = headers.get("x-mbx-time-unit", "").upper() == "MICROSECOND"
        params = {name: values[-1] for name, values in query.items()}
        try:
            if path == "/api/v3/ping":
                return ok({})
            if path == "/api/v3/time":
                now = self.exchange.wall_clock()
                return ok({"serverTime": int(now * 1_000_000) if micro else int(now * 1000)})
            if path == "/api/v3/exchangeInfo":
                return ok(self.exchange_info(params))
            if path == "/api/v3/trades":
                return ok(self.trades(params, micro=micro, from_id=False))
            if path == "/api/v3/historicalTrades":
                return ok(self.trades(params, micro=micro, from_id=True))
            if path == "/api/v3/aggTrades":
                return ok(self.trades(params, micro=micro, from_id=True, kind=AGG_TRADE))
        except RestError as exc:
            return exc.reply()
        return HttpReply(404, b"", (("Content-Type", "text/plain"),))

    def exchange_info(self, params: dict[str, str]) -> dict[str, Any]:
        """The saved document, narrowed by `symbol`, `symbols` or `symbolStatus`.

        `rateLimits` are the limits the mock enforces today, whatever an old saved file says.
        """
        given = [name for name in ("symbol", "symbols", "symbolStatus") if name in params]
        if len(given) > 1:
            raise RestError(-1128, "Combination of optional parameters invalid.")
        listed = self.exchange.listed
        symbols = list(listed.values())
        if "symbol" in params:
            symbols = [self._listed(_symbol(params["symbol"], "symbol"))]
        elif "symbols" in params:
            symbols = [self._listed(name) for name in _symbol_list(params["symbols"])]
        elif "symbolStatus" in params:
            status = params["symbolStatus"]
            if status not in STATUSES:
                raise RestError(-1122, "Invalid symbolStatus.")
            symbols = [s for s in symbols if s.get("status") == status]
        document = dict(self.exchange.info)
        document["serverTime"] = self.exchange.now_ms()
        document["rateLimits"] = rate_limits(self.exchange.config.limits.request_weight)
        document["symbols"] = symbols
        return document

    def _listed(self, symbol: str) -> dict[str, Any]:
        found = self.exchange.listed.get(symbol)
        if found is None:
            raise RestError(-1121, "Invalid symbol.")
        return found

    def trades(
        self, params: dict[str, str], *, micro: bool, from_id: bool, kind: str = TRADE
    ) -> list[dict[str, Any]]:
        """Recent trades, or (historicalTrades, aggTrades with fromId) trades from an id on."""
        if not params.get("symbol"):
            raise RestError(
                -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
            )
        symbol = _symbol(params["symbol"], "symbol")
        market = self.exchange.market(symbol)
        if market is None:
            raise RestError(-1121, "Invalid symbol.")
        if "startTime" in params or "endTime" in params:
            raise RestError(-1101, "startTime and endTime are not supported by the mock exchange.")
        limit = min(MAX_LIMIT, _integer(params, "limit", 500))
        if limit < 1:
            raise RestError(-1100, _illegal("limit", "1-1000"))
        head = market.head()
        if from_id and "fromId" in params:
            first = market.index_of(_integer(params, "fromId", 0))
        else:
            first = head - limit
        return market.history(first, limit, micro=micro, kind=kind)


def _symbol(value: str, name: str) -> str:
    if len(value) > MAX_LENGTH or not _SYMBOL.fullmatch(value):
        raise RestError(
            -1100,
            _illegal(name, "^[A-Z0-9-_.]{1,20}$"),
        )
    return value


def _symbol_list(value: str) -> list[str]:
    try:
        names = json.loads(value)
    except ValueError:
        names = None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise RestError(
            -1100,
            "Illegal characters found in parameter 'symbols'; legal range is "
            '\'^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$\'.',
        )
    return [_symbol(n, "symbols") for n in names]


def _integer(params: dict[str, str], name: str, default: int) -> int:
    value = params.get(name)
    if value is None or value == "":
        return default
    if not re.fullmatch(r"-?[0-9]{1,19}", value):
        raise RestError(
            -1100,
            _illegal(name, "^[0-9]{1,20}$"),
        )
    return int(value)


def _illegal(name: str, legal: str) -> str:
    return f"Illegal characters found in parameter '{name}'; legal range is '{legal}'."
