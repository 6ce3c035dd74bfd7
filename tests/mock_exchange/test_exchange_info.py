"""Loading the exchangeInfo document the mock serves."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamer.mock_exchange.exchange_info import (
    BUILTIN_SYMBOLS,
    ExchangeInfoError,
    load_exchange_info,
)


def test_saved_response_in_the_data_dir_is_used(tiny_data: Path) -> None:
    """The JSON under `exchange_info/` of the data folder is the served document."""
    info = load_exchange_info(None, tiny_data)
    assert [s["symbol"] for s in info["symbols"]] == ["BNBBTC", "ETHBTC", "XRPUSDT", "LTCBTC"]


def test_builtin_document_without_data(tmp_path: Path) -> None:
    """Without any saved response, a small built-in exchangeInfo with trading symbols is served."""
    info = load_exchange_info(None, tmp_path)
    assert [s["symbol"] for s in info["symbols"]] == [names[0] for names in BUILTIN_SYMBOLS]
    assert {s["status"] for s in info["symbols"]} == {"TRADING"}
    assert info["timezone"] == "UTC"


def test_unreadable_file_is_one_clear_error(tmp_path: Path) -> None:
    """A missing file fails with a message naming it."""
    with pytest.raises(ExchangeInfoError, match="cannot read exchangeInfo from"):
        load_exchange_info(tmp_path / "absent.json", None)


def test_document_without_symbols_is_refused(tmp_path: Path) -> None:
    """JSON that is not an exchangeInfo response is refused."""
    path = tmp_path / "info.json"
    path.write_text('{"hello": 1}')
    with pytest.raises(ExchangeInfoError, match="not an exchangeInfo response"):
        load_exchange_info(path, None)
