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

# Several instances on one PostgreSQL database (see `streamer.ownership`): who is alive, and
# which of them holds the lease of each enabled symbol. `epoch` grows on every change of owner.
instances = sa.Table(
    "instances",
    metadata,
    sa.Column("id", sa.Text(), primary_key=True),
    sa.Column("address", sa.Text(), nullable=False),
    sa.Column("started", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column(
        "last_seen", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("draining", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("symbols", sa.JSON(), nullable=False, server_default="[]"),
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column(
        "symbol",
        sa.Text(),
        sa.ForeignKey("settings.symbol", ondelete="CASCADE", name="leases_symbol_fkey"),
        primary_key=True,
    ),
    sa.Column("owner", sa.Text(), nullable=True),
    sa.Column("epoch", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("releasing", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("streaming", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Index("leases_owner_idx", "owner"),
)
