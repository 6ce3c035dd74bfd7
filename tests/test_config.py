"""Where the service looks for things when nothing is configured."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from streamer.config import BINANCE_REST_URL, BINANCE_WS_URL, Settings, default_data_dir


def test_defaults_point_at_the_real_exchange_and_a_local_api(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With no variables set, the exchange is Binance and the API is on 127.0.0.1:8000."""
    for name in ("STREAMER_WS_URL", "STREAMER_REST_URL", "STREAMER_HOST", "STREAMER_PORT"):
        monkeypatch.delenv(name, raising=False)

    settings = Settings()

    assert (settings.ws_url, settings.rest_url) == (BINANCE_WS_URL, BINANCE_REST_URL)
    assert (settings.host, settings.port, settings.token) == ("127.0.0.1", 8000, None)


def test_the_default_database_is_an_sqlite_file_in_the_user_data_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No STREAMER_DATABASE_URL means streamer.db in the per-user data directory."""
    monkeypatch.delenv("STREAMER_DATABASE_URL", raising=False)

    url = Settings().resolved_database_url()

    assert url == f"sqlite:///{default_data_dir() / 'streamer.db'}"


def test_the_environment_chooses_the_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """STREAMER_DATABASE_URL replaces the default."""
    monkeypatch.setenv("STREAMER_DATABASE_URL", "postgresql://postgres@127.0.0.1/streamer")

    assert Settings().resolved_database_url() == "postgresql://postgres@127.0.0.1/streamer"


def test_sinks_are_a_comma_separated_list_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """STREAMER_SINKS names several brokers at once, separated by commas."""
    monkeypatch.setenv("STREAMER_SINKS", "nats://127.0.0.1:4222, redis://127.0.0.1:6379/0")
    monkeypatch.setenv("STREAMER_SINK_REQUIRED", "true")

    settings = Settings()

    assert settings.sinks == ["nats://127.0.0.1:4222", "redis://127.0.0.1:6379/0"]
    assert settings.sink_required is True


def test_a_dotenv_file_in_the_working_directory_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`.env` in the working directory configures the service; a real variable still wins."""
    monkeypatch.delenv("STREAMER_PORT", raising=False)
    monkeypatch.setenv("STREAMER_HOST", "127.0.0.2")
    (tmp_path / ".env").write_text("STREAMER_PORT=9123\nSTREAMER_HOST=127.0.0.3\n")
    monkeypatch.chdir(tmp_path)

    settings = Settings()

    assert (settings.host, settings.port) == ("127.0.0.2", 9123)


@pytest.mark.parametrize(
    "setting",
    [
        {"port": 99999},
        {"port": -1},
        {"ws_url": "ws://127.0.0.1:99999"},
        {"rest_url": "http://127.0.0.1:0"},
        {"rest_url": "http://127.0.0.1:70000/api"},
    ],
)
def test_a_port_outside_the_tcp_range_is_refused(setting: dict[str, object]) -> None:
    """A port outside 1-65535 (0 only for the API, where it picks a free one) does not validate."""
    with pytest.raises(ValidationError, match=r"equal to 0|65535"):
        Settings(**setting)  # type: ignore[arg-type]


def test_extra_allowed_hosts_are_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """STREAMER_ALLOWED_HOSTS names extra Host names, comma-separated."""
    monkeypatch.setenv("STREAMER_ALLOWED_HOSTS", "streamer.example.org, 10.0.0.5")
    assert Settings().allowed_hosts == ["streamer.example.org", "10.0.0.5"]


def test_the_journal_budget_takes_sizes_with_units_and_refuses_a_tiny_one() -> None:
    """`--journal-max-bytes 500MB` is 500,000,000 bytes; one under 2 MiB cannot hold two
    segments and is refused."""
    assert Settings(journal_max_bytes="500MB").journal_max_bytes == 500_000_000
    assert Settings(journal_max_bytes="2GiB").journal_max_bytes == 2 << 30
    with pytest.raises(ValidationError):
        Settings(journal_max_bytes="1MB")
