"""`streamer verify` and `streamer record` as a user types them."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from streamer.cli import app
from tests.binance.recorded import require_data
from tests.recording.test_verify import _clean_recording
from tests.sinks.test_parquet import crash_after_publishing, record, trade


def test_verify_of_the_csv_recordings_names_each_hole_and_exits_1(tmp_path: Path) -> None:
    """Each unexplained hole is one line, then a summary, and the exit code says not clean."""
    shutil.copy(require_data() / "ADAUSDT-2019-06-03.csv.gz", tmp_path)
    result = CliRunner().invoke(app, ["verify", str(tmp_path)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == "ADAUSDT 2019-06-03: ids 14364021..14421163, 57018 trades"
    assert sum("not in the gap ledger" in line for line in lines) == 7
    assert lines[-1].startswith("1 symbol, 1 day, 57018 trades; 7 holes not in the ledger (125")
    assert lines[-1].endswith("NOT CLEAN")


async def test_verify_of_a_clean_recording_exits_0(tmp_path: Path) -> None:
    """Our own recording, with its gap in the ledger, verifies clean."""
    await _clean_recording(tmp_path)
    result = CliRunner().invoke(app, ["verify", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].endswith(": clean")


def test_verify_of_a_folder_without_trades_is_one_error_line(tmp_path: Path) -> None:
    """An empty folder or a missing one is a clear error, not a traceback."""
    empty = CliRunner().invoke(app, ["verify", str(tmp_path)])
    assert empty.exit_code == 1
    assert "holds neither a recording nor CSV trade files" in empty.output
    missing = CliRunner().invoke(app, ["verify", str(tmp_path / "nope")])
    assert missing.exit_code == 2


async def test_verify_names_trades_still_in_the_journal_of_a_crashed_recorder(
    tmp_path: Path,
) -> None:
    """Acknowledged trades not rolled into parts yet are counted in a note, not as a hole."""
    await record(tmp_path, [trade(1)])
    await crash_after_publishing(tmp_path)
    result = CliRunner().invoke(app, ["verify", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "note: 2 trades are in" in result.output
    assert "rolls them into parts when it starts again" in result.output
