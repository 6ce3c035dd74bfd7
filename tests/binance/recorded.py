"""Frames in today's combined-stream shape, built from the recorded trades in ../shared/data."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import msgspec
import pytest

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
TRADES = DATA / "trades"


def require_data() -> Path:
    """The trades folder; skips the test where it is absent, except in CI where it must exist."""
    if not TRADES.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"recorded data missing in CI: {TRADES}")
        pytest.skip(f"recorded data not found at {TRADES}")
    return TRADES


def recorded_rows(symbol: str, limit: int | None = None) -> list[list[str]]:
    """Rows of one symbol's recorded day, sorted by trade id."""
    path = require_data() / f"{symbol}-2019-06-03.csv.gz"
    with gzip.open(path, "rt") as fh:
        rows = [line.rstrip("\n").split(";") for line in fh]
    rows.sort(key=lambda row: int(row[4]))
    return rows[:limit] if limit is not None else rows


def payload(row: list[str]) -> dict[str, object]:
    """The trade payload today's exchange would send for a recorded row (no `b`/`a`)."""
    return {
        "e": row[1],
        "E": int(row[2]),
        "s": row[3],
        "t": int(row[4]),
        "p": row[5],
        "q": row[6],
        "T": int(row[9]),
        "m": row[10] == "t",
        "M": True,
    }


def combined_frame(row: list[str]) -> bytes:
    """A combined-stream frame carrying the row."""
    return msgspec.json.encode({"stream": f"{row[3].lower()}@trade", "data": payload(row)})
