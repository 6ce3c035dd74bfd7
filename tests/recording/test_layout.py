"""The recording's layout: parts in the order they were written, and hidden unfinished files."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from streamer.recording.layout import is_recording, next_part, parts, write_atomically


def test_parts_come_in_written_order_past_ten_and_skip_other_files(tmp_path: Path) -> None:
    """part-10 follows part-9 (numbers, not text); temporary and foreign files are not parts."""
    for name in ("part-10.parquet", "part-9.parquet", "part-0.parquet", ".part-11.parquet.tmp"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in parts(tmp_path)] == [
        "part-0.parquet",
        "part-9.parquet",
        "part-10.parquet",
    ]
    assert next_part(tmp_path).name == "part-11.parquet"
    assert next_part(tmp_path / "new").name == "part-0.parquet"


def test_an_atomic_write_leaves_only_the_finished_file(tmp_path: Path) -> None:
    """The file appears under its name whole; no temporary name is left beside it."""
    target = tmp_path / "symbol=X" / "date=2019-06-03" / "part-0.parquet"
    write_atomically(pa.table({"trade_id": [1, 2]}), target)
    assert [p.name for p in target.parent.iterdir()] == ["part-0.parquet"]
    assert is_recording(tmp_path)
    assert not is_recording(target.parent)
