"""Settings shared by every command: one place reads the environment, flags override it.

Every value has a `STREAMER_` environment variable (`STREAMER_DATABASE_URL`, `STREAMER_WS_URL`, ...)
so the CLI, the service and the tests agree on where things are without passing flags around.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from platformdirs import user_data_path
from pydantic import ByteSize, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from streamer.journal import FsyncPolicy
from streamer.logs import LogFormat

BINANCE_WS_URL = "wss://stream.binance.com:9443"
BINANCE_REST_URL = "https://api.binance.com"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def default_data_dir() -> Path:
    """The per-user data directory: the default SQLite database lives here."""
    return user_data_path("streamer", appauthor=False)


def default_database_url() -> str:
    return f"sqlite:///{default_data_dir() / 'streamer.db'}"


def checked_url(url: str) -> str:
    """`url` unchanged, or ValueError when it names a port outside 1-65535."""
    try:
        port = urlsplit(url).port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"{url!r} names a port outside 1-65535")
    return url


class Settings(BaseSettings):
    """The service's configuration; defaults point at the real Binance and a local SQLite file."""

    model_config = SettingsConfigDict(
        env_prefix="STREAMER_", extra="ignore", env_file=".env", env_file_encoding="utf-8"
    )

    database_url: str = ""
    ws_url: str = BINANCE_WS_URL
    rest_url: str = BINANCE_REST_URL
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    """TCP port of the API; 0 lets `run` pick a free one."""
    token: SecretStr | None = None
    allowed_hosts: Annotated[list[str], NoDecode] = []
    """Extra names the API answers to beyond this machine's; a comma-separated list."""
    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.TEXT
    sinks: Annotated[list[str], NoDecode] = []
    """Sink URLs (`nats://...`, `redis://...`); the variable is a comma-separated list."""
    sink_required: bool = False
    """Whether the service is ready only while every sink's destination answers."""
    journal_dir: Path | None = None
    """Where the journal the sinks read lives; beside the SQLite database by default, else in
    the data directory under the instance's name."""
    journal_max_bytes: Annotated[ByteSize, Field(ge=2 * 1024 * 1024)] = ByteSize(1 << 30)
    """The journal's disk budget: past it, trades a lagging sink has not sent are dropped (and
    re-fetched from the exchange when it catches up)."""
    journal_fsync: FsyncPolicy = FsyncPolicy.INTERVAL
    """When journal appends are forced to disk: always, interval (every 0.2 s) or never."""
    # Several instances on one PostgreSQL database (see `streamer.ownership`).
    instance_id: str = ""
    lease_ttl: float = 6.0
    lease_renew: float = 1.0

    @field_validator("ws_url", "rest_url")
    @classmethod
    def _port_in_range(cls, value: str) -> str:
        return checked_url(value)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"{value!r} is not one of {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("sinks", "allowed_hosts", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    def resolved_database_url(self) -> str:
        """The configured database URL, or the per-user SQLite file when none is set."""
        return self.database_url or default_database_url()
