"""Alembic's entry point: runs on the connection `streamer.db.migrate` hands it, never its own.

The project runs Alembic programmatically on its asyncio engine, so there is no alembic.ini and
no URL here: the caller opens the connection (and holds any lock) and Alembic only migrates.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from streamer.db.models import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


_connection = context.config.attributes.get("connection")
if not isinstance(_connection, Connection):
    raise RuntimeError("run migrations through `streamer db upgrade`, not the alembic command")
_run(_connection)
