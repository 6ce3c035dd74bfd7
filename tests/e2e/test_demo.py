"""`streamer demo`: the README's first command works from nothing, and stops by itself."""

from __future__ import annotations

import re

from tests.e2e.processes import run_cli

DEMO_SYMBOLS = {"ADAUSDT", "FETUSDT", "MATICUSDT", "WAVESUSDT", "ETHUSDT"}
ROW = re.compile(r"^\W+([A-Z0-9]+)\W+([a-z]+)\W+(\d+)\W", re.MULTILINE)


def test_the_demo_streams_its_symbols_and_exits_cleanly() -> None:
    """`streamer demo --duration 5` shows its symbols streaming trades, then exits 0 by itself."""
    result = run_cli("demo", "--duration", "5")
    assert result.code == 0, result.stderr
    rows = {symbol: (state, int(trades)) for symbol, state, trades in ROW.findall(result.stdout)}
    assert set(rows) == DEMO_SYMBOLS, result.stdout
    assert {state for state, _ in rows.values()} == {"streaming"}, result.stdout
    assert sum(trades for _, trades in rows.values()) > 0, result.stdout
    assert result.stdout.rstrip().endswith("demo stopped")
    assert "Traceback" not in result.stderr
