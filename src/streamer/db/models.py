"""The `settings` table: which symbols stream. The database is the only source of that truth."""

from __future__ import annotations

from enum import StrEnum

import sqlalchemy as sa

metadata = sa.MetaData()


class Status(StrEnum):
    """Whether a symbol should stream; only `on` symbols are started at boot."""

    ON = "on"
    OFF = "off"


status_type = sa.Enum(
    Status,
    name="streaming_status",
    values_callable=lambda statuses: [status.value for status in statuses],
    create_constraint=True,
    validate_strings=True,
)

settings = sa.Table(
    "settings",
    metadata,
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("symbol", sa.Text(), nullable=False),
    sa.Column("status", status_type, nullable=False, server_default=Status.OFF.value),
    sa.Column(
        "inserted_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    # The last trade delivered while the symbol streamed: where the next run resumes from.
    sa.Column("last_trade_id", sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint("id", name="settings_pkey"),
    sa.UniqueConstraint("symbol", name="settings_symbol_key"),
)
