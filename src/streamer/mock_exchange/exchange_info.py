"""The exchangeInfo document: a saved real response, or a small built-in one without data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BUILTIN_SYMBOLS = (
    ("BTCUSDT", "BTC", "USDT"),
    ("ETHUSDT", "ETH", "USDT"),
    ("BNBUSDT", "BNB", "USDT"),
    ("ETHBTC", "ETH", "BTC"),
    ("ADAUSDT", "ADA", "USDT"),
    ("XRPUSDT", "XRP", "USDT"),
    ("这是测试币456", "这是测试币", "456"),  # the spot testnet's Unicode symbol
)
STATUSES = (
    "PRE_TRADING",
    "TRADING",
    "POST_TRADING",
    "END_OF_DAY",
    "HALT",
    "AUCTION_MATCH",
    "BREAK",
)


class ExchangeInfoError(ValueError):
    """An exchangeInfo file that cannot be served."""


def load_exchange_info(path: Path | None, data_dir: Path | None) -> dict[str, Any]:
    """The given file, else the newest saved one in `data_dir/exchange_info`, else the built-in."""
    if path is None and data_dir is not None and (data_dir / "exchange_info").is_dir():
        saved = sorted((data_dir / "exchange_info").glob("*.json"))
        path = saved[-1] if saved else None
    if path is None:
        return builtin_exchange_info()
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ExchangeInfoError(f"cannot read exchangeInfo from {path}: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("symbols"), list):
        raise ExchangeInfoError(f"{path} is not an exchangeInfo response (no symbols list)")
    return document


def builtin_exchange_info() -> dict[str, Any]:
    """A minimal but well-formed exchangeInfo, for machines without the saved response."""
    return {
        "timezone": "UTC",
        "serverTime": 0,
        "rateLimits": [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": 6000,
            },
            {
                "rateLimitType": "RAW_REQUESTS",
                "interval": "MINUTE",
                "intervalNum": 5,
                "limit": 61000,
            },
        ],
        "exchangeFilters": [],
        "symbols": [_builtin_symbol(*names) for names in BUILTIN_SYMBOLS],
    }


def _builtin_symbol(symbol: str, base: str, quote: str) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": "0.00000001",
                "maxPrice": "1000000.00000000",
                "tickSize": "0.00000001",
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": "0.00000001",
                "maxQty": "9000000.00000000",
                "stepSize": "0.00000001",
            },
        ],
        "permissions": ["SPOT"],
    }
