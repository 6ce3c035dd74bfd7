"""Binance symbol names: one spelling everywhere, checked before anything reaches the exchange.

Users type `ethusdt`, ` EthUsdt ` or `ETHUSDT`; the database, the registry of workers and the
pub/sub topics must all agree on one name, so every entry point goes through `normalize_symbol`.
"""

from __future__ import annotations

import re

from streamer.errors import StreamerError

_SYMBOL = re.compile(r"[A-Z0-9]{2,20}")
_PREFIX = re.compile(r"[A-Z0-9]{0,20}")


class InvalidSymbol(StreamerError, ValueError):
    """A symbol that cannot be a Binance spot symbol; the message is one line fit for a user."""


def normalize_symbol(raw: str) -> str:
    """Trim and uppercase `raw`, then insist on Binance's shape: 2 to 20 letters or digits."""
    symbol = raw.strip().upper()
    if not _SYMBOL.fullmatch(symbol):
        shown = raw if len(raw) <= 40 else raw[:40] + "..."
        raise InvalidSymbol(
            f"invalid symbol {shown!r}: a Binance symbol is 2 to 20 letters or digits, e.g. ETHUSDT"
        )
    return symbol


def normalize_prefix(raw: str) -> str:
    """The start of a symbol, for filters: trimmed, uppercased, up to 20 letters or digits."""
    prefix = raw.strip().upper()
    if not _PREFIX.fullmatch(prefix):
        raise InvalidSymbol(f"invalid symbol prefix {raw!r}: use up to 20 letters or digits")
    return prefix
