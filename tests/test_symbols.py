"""Symbol normalisation: one spelling of every symbol, and no second spelling of any symbol."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamer.symbols import (
    InvalidSymbol,
    exchange_symbol,
    normalize_prefix,
    normalize_symbol,
    stream_symbol,
    symbol_of_stream,
    url_quote,
)

UNICODE_SYMBOL = "这是测试币456"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" ethusdt ", "ETHUSDT"),
        ("EthUsdt", "ETHUSDT"),
        ("1000SATSUSDT", "1000SATSUSDT"),
        ("\tbtc\n", "BTC"),
        (UNICODE_SYMBOL, UNICODE_SYMBOL),
    ],
)
def test_normalize_trims_and_uppercases(raw: str, expected: str) -> None:
    """Surrounding whitespace is dropped and ASCII letters are uppercased."""
    assert normalize_symbol(raw) == expected


@pytest.mark.parametrize("raw", ["ETH/USDT", "eth-usdt", "Eth_Usdt", " eth/usdt "])
def test_the_forms_users_type_name_the_symbol(raw: str) -> None:
    """`ETH/USDT`, `eth-usdt` and `ETH_USDT` all name ETHUSDT."""
    assert normalize_symbol(raw) == "ETHUSDT"


def test_a_pair_form_keeps_non_ascii_assets() -> None:
    """The separator of a pair is dropped whatever the assets' script."""
    assert normalize_symbol("这是测试币/456") == UNICODE_SYMBOL


def test_non_ascii_letters_are_never_folded() -> None:
    """A long s stays a long s (no alias of ETHUSDT), and a Kelvin sign stays a Kelvin sign."""
    assert normalize_symbol("ethu\u017fdt") == "ETHU\u017fDT"
    assert normalize_symbol("ethu\u017fdt") != "ETHUSDT"
    assert normalize_symbol("\u212abtc") == "\u212aBTC"  # KELVIN SIGN, which str.lower folds to k


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "E",
        "ETH USDT",
        "ETH//USDT",
        "/ETHUSDT",
        "ETH-USDT-X",
        "ETH/USDT-X",
        "A" * 21,
        "x;drop",
        "e\u0301th",  # a combining accent: not a letter of its own
        "ETH.USDT",
    ],
)
def test_malformed_symbols_are_rejected_with_one_line(raw: str) -> None:
    """Anything but 2 to 20 letters or digits (after one separator) raises a one-line error."""
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


@given(st.text(min_size=2, max_size=20))
def test_only_ascii_letters_change(raw: str) -> None:
    """Whatever is accepted differs from the input only in ASCII case and separators."""
    try:
        symbol = normalize_symbol(raw)
    except InvalidSymbol:
        return
    kept = [c for c in raw.strip() if c not in "/-_"]
    assert len(symbol) == len(kept)
    for typed, stored in zip(kept, symbol, strict=True):
        assert stored == (typed.upper() if typed.isascii() else typed)


def test_exchange_names_are_taken_exactly_as_listed() -> None:
    """A listed name is stored as it is; one not in its one spelling is refused."""
    assert exchange_symbol(UNICODE_SYMBOL) == UNICODE_SYMBOL
    assert exchange_symbol("ETHUSDT") == "ETHUSDT"
    for listed in ("ethusdt", "ETH-USDT", " ETHUSDT"):
        with pytest.raises(InvalidSymbol, match="listed symbol"):
            exchange_symbol(listed)


def test_stream_names_change_ascii_case_only() -> None:
    """Stream names lower-case ASCII letters only, and come back to the same symbol."""
    for symbol in ("ETHUSDT", UNICODE_SYMBOL, "ETHU\u017fDT", "İBTC"):
        assert symbol_of_stream(stream_symbol(symbol)) == symbol
    assert stream_symbol("İBTC") == "İbtc"


def test_urls_carry_non_ascii_names_percent_encoded() -> None:
    """A non-ASCII stream name goes into a URL as UTF-8 percent-encoding, `@` kept."""
    assert url_quote("ethusdt@trade") == "ethusdt@trade"
    assert url_quote("这@trade") == "%E8%BF%99@trade"


def test_a_prefix_is_trimmed_and_uppercased() -> None:
    """`" eth "` filters on ETH; an empty prefix matches every symbol."""
    assert normalize_prefix(" eth ") == "ETH"
    assert normalize_prefix("") == ""
    assert normalize_prefix("这是") == "这是"


def test_a_prefix_with_other_characters_is_rejected() -> None:
    """A prefix that no symbol can start with is an error, not an empty result."""
    with pytest.raises(InvalidSymbol, match="invalid symbol prefix"):
        normalize_prefix("ETH/")
