"""Binance symbol names: one spelling everywhere, and never two spellings of one symbol.

Users type `ethusdt`, ` EthUsdt `, `ETH/USDT` or `eth-usdt`; the database, the registry of
workers, the pub/sub topics and the stream names must all agree on one name, so every entry point
goes through `normalize_symbol`. Since December 2025 a symbol may contain non-ASCII UTF-8 letters
and digits (`这是测试币456`), so the rules are written to open no alias:

- only ASCII letters change case (`str.upper` would fold `ETHU\u017fDT`, long s, into `ETHUSDT`,
  and `str.lower` would turn `İ` into two code points): nothing else is folded or normalised;
- a name holds letters and digits only (ASCII `A-Z0-9`, or any non-ASCII letter or digit), so
  no listed symbol contains a separator and dropping the one separator of `ETH/USDT` can only
  ever name `ETHUSDT`;
- names from the exchange go through `exchange_symbol`, which accepts a name only exactly as
  listed, so the settings table never holds a spelling a user could not type back.
"""

from __future__ import annotations

import string
import unicodedata
from urllib.parse import quote

from streamer.errors import StreamerError

MAX_LENGTH = 20
#: Characters a user may put between base and quote asset: `ETH/USDT`, `eth-usdt`, `ETH_USDT`.
SEPARATORS = "/-_"
_TO_UPPER = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)
_TO_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_ASCII_SYMBOL = frozenset(string.ascii_uppercase + string.digits)
_SHAPE = f"2 to {MAX_LENGTH} letters or digits, e.g. ETHUSDT or ETH/USDT"


class InvalidSymbol(StreamerError, ValueError):
    """A symbol that cannot be a Binance spot symbol; the message is one line fit for a user."""


def ascii_upper(text: str) -> str:
    """`text` with ASCII letters upper-cased and every other character left exactly as it is."""
    return text.translate(_TO_UPPER)


def ascii_lower(text: str) -> str:
    """`text` with ASCII letters lower-cased and every other character left exactly as it is."""
    return text.translate(_TO_LOWER)


def is_symbol_char(char: str) -> bool:
    """An upper-case ASCII letter, an ASCII digit, or a non-ASCII letter or digit."""
    if char.isascii():
        return char in _ASCII_SYMBOL
    return unicodedata.category(char)[0] in "LN"


def _is_symbol(name: str) -> bool:
    return 2 <= len(name) <= MAX_LENGTH and all(is_symbol_char(c) for c in name)


def _shown(raw: str) -> str:
    return repr(raw if len(raw) <= 40 else raw[:40] + "...")


def normalize_symbol(raw: str) -> str:
    """The one spelling of what a user typed: trimmed, ASCII upper-cased, one separator dropped.

    Raises `InvalidSymbol` for anything that cannot be a symbol. Whether the symbol exists is
    the settings table's answer, not this function's.
    """
    symbol = ascii_upper(raw.strip())
    parts = [symbol]
    for separator in SEPARATORS:
        if separator in symbol:
            parts = symbol.split(separator)
            break
    if len(parts) == 2 and all(parts):
        symbol = parts[0] + parts[1]
    if not _is_symbol(symbol):
        raise InvalidSymbol(f"invalid symbol {_shown(raw)}: a Binance symbol is {_SHAPE}")
    return symbol


def exchange_symbol(raw: str) -> str:
    """A symbol exactly as the exchange lists it, refused unless it is already in its one spelling.

    The seed stores names through here, so `ethusdt` or `ETH-USDT` in an exchangeInfo cannot
    become a second name for `ETHUSDT`.
    """
    if not _is_symbol(raw):
        raise InvalidSymbol(f"invalid symbol {_shown(raw)}: a listed symbol is {_SHAPE}")
    return raw


def normalize_prefix(raw: str) -> str:
    """The start of a symbol, for filters: trimmed, ASCII upper-cased, up to 20 characters."""
    prefix = ascii_upper(raw.strip())
    if len(prefix) > MAX_LENGTH or not all(is_symbol_char(c) for c in prefix):
        raise InvalidSymbol(
            f"invalid symbol prefix {_shown(raw)}: use up to {MAX_LENGTH} letters or digits"
        )
    return prefix


def stream_symbol(symbol: str) -> str:
    """The symbol as Binance's stream names spell it: ASCII letters lower-cased, nothing else."""
    return ascii_lower(symbol)


def symbol_of_stream(stream_symbol: str) -> str:
    """Back from a stream name's symbol part: ASCII letters upper-cased, nothing else."""
    return ascii_upper(stream_symbol)


def parse_stream_symbol(text: str) -> str | None:
    """The symbol a stream name's symbol part names, or None if no stream name is spelled so."""
    if any(c in string.ascii_uppercase for c in text):
        return None
    symbol = ascii_upper(text)
    return symbol if _is_symbol(symbol) else None


def url_quote(name: str) -> str:
    """`name` percent-encoded as UTF-8 for a URL path or query (`@` kept, as Binance's URLs do)."""
    return quote(name, safe="@")
