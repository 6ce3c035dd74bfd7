"""Instances sharing one database, and a lease per symbol saying which of them streams it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "instances",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column(
            "started", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "last_seen", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("draining", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("symbols", sa.JSON(), nullable=False, server_default="[]"),
        sa.PrimaryKeyConstraint("id", name="instances_pkey"),
    )
    op.create_table(
        "leases",
        sa.Column("symbol", sa.Text(), nullable=False),
        sa.Column("owner", sa.Text(), nullable=True),
        sa.Column("epoch", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("releasing", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("streaming", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("symbol", name="leases_pkey"),
        sa.ForeignKeyConstraint(
            ["symbol"], ["settings.symbol"], name="leases_symbol_fkey", ondelete="CASCADE"
        ),
    )
    op.create_index("leases_owner_idx", "leases", ["owner"])


def downgrade() -> None:
    op.drop_index("leases_owner_idx", table_name="leases")
    op.drop_table("leases")
    op.drop_table("instances")
