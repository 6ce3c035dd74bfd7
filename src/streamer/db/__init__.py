"""The settings database: which symbols stream, persisted across restarts.

SQLite by default (a file in the user's data directory), PostgreSQL for deployments; the schema
is moved by the Alembic migrations shipped in `streamer.db.migrations`.
"""

from streamer.db.engine import create_engine
from streamer.db.errors import (
    DatabaseCorrupt,
    DatabaseError,
    DatabaseMissing,
    DatabaseUnavailable,
    InvalidDatabaseUrl,
    SchemaOutOfDate,
    UnknownSymbol,
)
from streamer.db.migrate import current, downgrade, head, upgrade
from streamer.db.models import Status
from streamer.db.repository import Setting, SettingsRepository

__all__ = [
    "DatabaseCorrupt",
    "DatabaseError",
    "DatabaseMissing",
    "DatabaseUnavailable",
    "InvalidDatabaseUrl",
    "SchemaOutOfDate",
    "Setting",
    "SettingsRepository",
    "Status",
    "UnknownSymbol",
    "create_engine",
    "current",
    "downgrade",
    "head",
    "upgrade",
]
