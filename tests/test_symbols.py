"""Symbol normalisation: one spelling of every symbol across the database, workers and topics."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamer.symbols import InvalidSymbol, normalize_prefix, normalize_symbol


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" ethusdt ", "ETHUSDT"),
        ("EthUsdt", "ETHUSDT"),
        ("1000SATSUSDT", "1000SATSUSDT"),
        ("\tbtc\n", "BTC"),
    ],
)
def test_normalize_trims_and_uppercases(raw: str, expected: str) -> None:
    """Surrounding whitespace is dropped and letters are uppercased."""
    assert normalize_symbol(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["", "   ", "E", "ETH-USDT", "ETH USDT", "ETH/USDT", "A" * 21, "ÉTHUSDT", "eth_usdt", "x;drop"],
)
def test_malformed_symbols_are_rejected_with_one_line(raw: str) -> None:
    """Anything but 2 to 20 ASCII letters or digits raises InvalidSymbol with a one-line message."""
    with pytest.raises(InvalidSymbol) as caught:
        normalize_symbol(raw)
    message = str(caught.value)
    assert "\n" not in message
    assert "2 to 20 letters or digits" in message


def test_invalid_symbol_is_a_value_error() -> None:
    """Callers that only know ValueError still catch a bad symbol."""
    with pytest.raises(ValueError, match="invalid symbol"):
        normalize_symbol("no way")


@given(st.from_regex(r"[A-Za-z0-9]{2,20}", fullmatch=True))
def test_normalize_is_idempotent(raw: str) -> None:
    """Normalising a normalised symbol changes nothing."""
    once = normalize_symbol(raw)
    assert normalize_symbol(once) == once
    assert once == raw.upper()


def test_a_prefix_is_trimmed_and_uppercased() -> None:
    """`" eth "` filters on ETH; an empty prefix matches every symbol."""
    assert normalize_prefix(" eth ") == "ETH"
    assert normalize_prefix("") == ""


def test_a_prefix_with_other_characters_is_rejected() -> None:
    """A prefix that no symbol can start with is an error, not an empty result."""
    with pytest.raises(InvalidSymbol, match="invalid symbol prefix"):
        normalize_prefix("ETH/")
