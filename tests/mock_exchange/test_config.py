"""The mock's start-up configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamer.mock_exchange.config import DATA_ENV, SAMPLE_DIR, MockConfig, find_shared_data


def test_speed_must_be_positive() -> None:
    """A zero or negative speed is refused with a message naming it."""
    with pytest.raises(ValueError, match="speed must be positive"):
        MockConfig(speed=0)


def test_synthetic_rate_must_be_positive() -> None:
    """A zero synthetic rate is refused."""
    with pytest.raises(ValueError, match="synthetic_rate must be positive"):
        MockConfig(synthetic_rate=0)


def test_explicit_data_dir_wins_over_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`data_dir` is used even when the environment names another folder."""
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "env"))
    assert MockConfig(data_dir=tmp_path / "given").resolved_data_dir() == tmp_path / "given"


def test_environment_names_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without `data_dir`, $STREAMER_MOCK_DATA is the data folder."""
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    assert MockConfig().resolved_data_dir() == tmp_path


def test_shared_data_is_found_beside_the_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From a folder inside a checkout, `../shared/data` beside it is found."""
    (tmp_path / "shared" / "data" / "trades").mkdir(parents=True)
    inside = tmp_path / "main" / "src"
    inside.mkdir(parents=True)
    monkeypatch.chdir(inside)
    assert find_shared_data() == tmp_path / "shared" / "data"


def test_the_packaged_sample_serves_when_no_data_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside a checkout and without $STREAMER_MOCK_DATA, the sample inside the package is used."""
    monkeypatch.delenv(DATA_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("streamer.mock_exchange.config.find_shared_data", lambda: None)
    assert MockConfig().resolved_data_dir() == SAMPLE_DIR
    assert sorted(p.name.split("-")[0] for p in (SAMPLE_DIR / "trades").iterdir()) == [
        "ADAUSDT",
        "FETUSDT",
        "MATICUSDT",
        "WAVESUSDT",
    ]
