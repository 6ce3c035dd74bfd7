"""Create the settings table: one row per symbol, streaming on or off.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# Frozen copy of the type as this revision created it: later edits to models.py must not
# change what an old migration does.
streaming_status = sa.Enum("on", "off", name="streaming_status", create_constraint=True)


def upgrade() -> None:
    op.create_table(
        "settings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("symbol", sa.Text(), nullable=False),
        sa.Column("status", streaming_status, nullable=False, server_default="off"),
        sa.Column(
            "inserted_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.PrimaryKeyConstraint("id", name="settings_pkey"),
        sa.UniqueConstraint("symbol", name="settings_symbol_key"),
    )


def downgrade() -> None:
    op.drop_table("settings")
    # PostgreSQL keeps an enum type after its table is gone; SQLite had only a CHECK constraint.
    streaming_status.drop(op.get_bind(), checkfirst=True)
