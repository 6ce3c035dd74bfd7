"""Reading recorded trade files into gap-free tapes."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from streamer.mock_exchange.data import DataError, load_tape, read_rows, scan_trade_files
from tests.mock_exchange.conftest import BASE_MS, BNB_IDS, recorder_row


def test_scan_groups_files_by_symbol(tiny_data: Path) -> None:
    """Every supported trade file is found and filed under its upper-case symbol."""
    files = scan_trade_files(tiny_data)
    assert sorted(files) == ["BNBBTC", "ETHBTC", "XRPUSDT"]


def test_scan_without_a_folder_finds_nothing(tmp_path: Path) -> None:
    """A missing data folder means no recorded symbols, not an error."""
    assert scan_trade_files(tmp_path / "absent") == {}
    assert scan_trade_files(None) == {}


def test_recorder_rows_are_sorted_and_holes_filled(tiny_data: Path) -> None:
    """Unsorted 13-column rows become one id-ordered tape whose lost ids are synthetic fills."""
    tape = load_tape("BNBBTC", scan_trade_files(tiny_data)["BNBBTC"])
    assert tape.first_id == BNB_IDS[0]
    assert tape.last_id == BNB_IDS[-1]
    assert len(tape) == 10
    assert tape.filled == 2
    fill = 104 - tape.first_id
    assert tape.price[fill] == tape.price[fill - 1] == b"0.0103"
    assert tape.trade_time_us[fill - 1] < tape.trade_time_us[fill] < tape.trade_time_us[fill + 2]


def test_recorder_times_and_flags_are_kept(tiny_data: Path) -> None:
    """Event time, trade time, price, quantity and the maker flag come from their columns."""
    tape = load_tape("BNBBTC", scan_trade_files(tiny_data)["BNBBTC"])
    assert tape.trade_time_us[0] == BASE_MS * 1000
    assert tape.event_time_us[0] == (BASE_MS + 3) * 1000
    assert tape.qty[0] == b"1.5"
    assert tape.maker[0] is True
    assert tape.maker[1] is False


def test_historical_zip_in_milliseconds(tiny_data: Path) -> None:
    """Binance's zipped 7-column files with millisecond times are read as microseconds."""
    tape = load_tape("ETHBTC", scan_trade_files(tiny_data)["ETHBTC"])
    assert tape.first_id == 500
    assert len(tape) == 6
    assert tape.trade_time_us[1] == (BASE_MS + 500) * 1000
    assert tape.event_time_us[1] == tape.trade_time_us[1]
    assert tape.maker[:2] == [False, True]


def test_historical_csv_in_microseconds(tiny_data: Path) -> None:
    """Binance's 7-column files from 2025 on carry microseconds, which are kept as they are."""
    tape = load_tape("XRPUSDT", scan_trade_files(tiny_data)["XRPUSDT"])
    assert tape.trade_time_us[1] == BASE_MS * 1000 + 250


def test_duplicate_rows_keep_the_first(tmp_path: Path) -> None:
    """A trade recorded twice appears once on the tape."""
    path = tmp_path / "BNBBTC-x.csv.gz"
    row = recorder_row(7, BASE_MS, "1.0", "2.0", True)
    path.write_bytes(gzip.compress(f"{row}\n{row}\n".encode()))
    assert len(load_tape("BNBBTC", [path])) == 1


def test_bad_row_names_file_and_line(tmp_path: Path) -> None:
    """A row that is not a trade fails with one message naming the file and the line number."""
    path = tmp_path / "BNBBTC-x.csv"
    path.write_text("1,0.1,2,0.2,1559520000000,true,true\n2,zero,2,0.2,1559520000000,true,true\n")
    with pytest.raises(DataError, match=r"BNBBTC-x\.csv:2: not a trade row"):
        list(read_rows(path))


def test_wrong_column_count_is_refused(tmp_path: Path) -> None:
    """A `;` row without 13 columns is refused rather than misread."""
    path = tmp_path / "BNBBTC-x.csv"
    path.write_text("a;b;c\n")
    with pytest.raises(DataError, match="expected 13 columns"):
        list(read_rows(path))


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    """A symbol whose files hold no rows cannot make a tape."""
    path = tmp_path / "BNBBTC-x.csv"
    path.write_text("\n")
    with pytest.raises(DataError, match="no trades for BNBBTC"):
        load_tape("BNBBTC", [path])
