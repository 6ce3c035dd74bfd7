"""A short kill grace for the supervision tests: a child that survives its kill is abandoned
after 50 ms instead of a second, so the tests of abandonment stay quick."""

from __future__ import annotations

import pytest

from streamer.otp import child


@pytest.fixture(autouse=True)
def short_kill_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(child, "KILL_GRACE", 0.05)
