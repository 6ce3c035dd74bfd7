"""The table definition the code uses agrees with the schema the migrations build."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from streamer.db.models import Status, metadata


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return [diff for diff in compare_metadata(context, metadata) if diff]


async def test_models_match_the_migrated_schema(engine: AsyncEngine) -> None:
    """Autogenerate finds nothing to change between models.py and the migrated database."""
    async with engine.connect() as connection:
        assert await connection.run_sync(_differences) == []


def test_status_values_are_on_and_off() -> None:
    """Status is exactly the chapter's on/off pair, stored as lower-case strings."""
    assert [status.value for status in Status] == ["on", "off"]
