"""The settings repository: the only code that reads or writes which symbols stream."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from streamer.db.engine import translate_errors
from streamer.db.errors import UnknownSymbol
from streamer.db.migrate import check_schema
from streamer.db.models import Status, settings
from streamer.symbols import normalize_prefix, normalize_symbol


@dataclass(frozen=True, slots=True)
class Setting:
    """One row of `settings`, detached from the database: safe to pass between tasks."""

    id: UUID
    symbol: str
    status: Status
    inserted_at: datetime
    updated_at: datetime


def utc(moment: datetime) -> datetime:
    """`moment` as an aware UTC datetime; SQLite hands back naive ones (stored as UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _setting(row: Row[tuple[UUID, str, str, datetime, datetime]]) -> Setting:
    return Setting(
        id=row.id,
        symbol=row.symbol,
        status=Status(row.status),
        inserted_at=utc(row.inserted_at),
        updated_at=utc(row.updated_at),
    )


_COLUMNS = (
    settings.c.id,
    settings.c.symbol,
    settings.c.status,
    settings.c.inserted_at,
    settings.c.updated_at,
)


#: Rows per INSERT: 5 parameters a row stays far below SQLite's and asyncpg's parameter limits.
CHUNK_SIZE = 500


class SettingsRepository:
    """Reads and changes settings; every symbol is normalised and validated on the way in.

    Each method is one short transaction, and a status change is a single
    `UPDATE ... RETURNING`, so concurrent changes (from the API, the CLI and other service
    instances) are serialised by the database and none is lost.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @asynccontextmanager
    async def _connection(self, *, write: bool = False) -> AsyncIterator[AsyncConnection]:
        with translate_errors(self._engine.url):
            if write:
                async with self._engine.begin() as connection:
                    yield connection
            else:
                async with self._engine.connect() as connection:
                    yield connection

    async def ping(self) -> None:
        """One round trip; raises `DatabaseUnavailable` when the database cannot answer."""
        async with self._connection() as connection:
            await connection.execute(sa.text("SELECT 1"))

    async def read_catalogue(self) -> None:
        """Read the schema once: a file that is not a database fails here (`DatabaseCorrupt`)."""
        async with self._connection() as connection:
            await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names())

    async def get(self, symbol: str) -> Setting:
        """The setting of `symbol`; `UnknownSymbol` if it was never seeded."""
        normalized = normalize_symbol(symbol)
        async with self._connection() as connection:
            result = await connection.execute(
                sa.select(settings).where(settings.c.symbol == normalized)
            )
            row = result.one_or_none()
        if row is None:
            raise UnknownSymbol(normalized)
        return _setting(row)

    async def set_status(self, symbol: str, status: Status) -> Setting:
        """Switch `symbol` on or off and return the row as this change left it.

        Switching off also forgets the symbol's saved position: a stop ends its stream on
        purpose, so the next start begins afresh instead of back-filling the pause.
        """
        normalized = normalize_symbol(symbol)
        wanted = Status(status)
        values: dict[str, object] = {"status": wanted, "updated_at": datetime.now(UTC)}
        if wanted is Status.OFF:
            values["last_trade_id"] = None
        statement = (
            sa.update(settings)
            .where(settings.c.symbol == normalized)
            .values(**values)
            .returning(*_COLUMNS)
        )
        async with self._connection(write=True) as connection:
            row = (await connection.execute(statement)).one_or_none()
        if row is None:
            raise UnknownSymbol(normalized)
        return _setting(row)

    async def list(
        self, *, status: Status | None = None, prefix: str | None = None
    ) -> builtins.list[Setting]:
        """All settings in symbol order, optionally only one status and/or a symbol prefix."""
        query = sa.select(settings).order_by(settings.c.symbol)
        if status is not None:
            query = query.where(settings.c.status == Status(status))
        if prefix:
            query = query.where(settings.c.symbol.startswith(normalize_prefix(prefix)))
        async with self._connection() as connection:
            rows = (await connection.execute(query)).all()
        return [_setting(row) for row in rows]

    async def save_positions(self, positions: Mapping[str, int]) -> None:
        """Record the last delivered trade id of each symbol that is still on.

        Symbols switched off meanwhile are skipped by the statement itself, so a save racing a
        stop cannot bring back the position the stop cleared.
        """
        if not positions:
            return
        statement = (
            sa.update(settings)
            .where(settings.c.symbol == sa.bindparam("b_symbol"))
            .where(settings.c.status == Status.ON)
            .values(last_trade_id=sa.bindparam("b_last_trade_id"))
        )
        rows = [{"b_symbol": s, "b_last_trade_id": t} for s, t in positions.items()]
        async with self._connection(write=True) as connection:
            await connection.execute(statement, rows)

    async def positions(self) -> dict[str, int]:
        """The saved last trade id of every symbol that is on and has one."""
        query = sa.select(settings.c.symbol, settings.c.last_trade_id).where(
            settings.c.status == Status.ON, settings.c.last_trade_id.is_not(None)
        )
        async with self._connection() as connection:
            rows = (await connection.execute(query)).all()
        return {row.symbol: row.last_trade_id for row in rows}

    async def enabled_symbols(self) -> builtins.list[str]:
        """The symbols to stream at start-up, in symbol order."""
        query = (
            sa.select(settings.c.symbol)
            .where(settings.c.status == Status.ON)
            .order_by(settings.c.symbol)
        )
        async with self._connection() as connection:
            return [*(await connection.scalars(query)).all()]

    async def symbols(self) -> set[str]:
        """Every symbol in the table, whatever its status."""
        async with self._connection() as connection:
            return set((await connection.scalars(sa.select(settings.c.symbol))).all())

    async def add_missing(
        self,
        symbols: Iterable[str],
        *,
        chunk_size: int = CHUNK_SIZE,
        on_chunk: Callable[[int], None] | None = None,
    ) -> int:
        """Insert the symbols that are not there yet, `off`; return how many were new.

        Existing rows are never touched (INSERT ... ON CONFLICT DO NOTHING), so this is safe to
        repeat and to race with another instance. Every symbol is validated before anything is
        written, and all chunks share one transaction: a bad list writes nothing.
        `on_chunk(n)` is told after each chunk of n symbols, for a progress bar.
        """
        wanted = sorted({normalize_symbol(symbol) for symbol in symbols})
        inserted = 0
        async with self._connection(write=True) as connection:
            dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
            for start in range(0, len(wanted), chunk_size):
                chunk = wanted[start : start + chunk_size]
                now = datetime.now(UTC)
                rows = [
                    {"id": uuid4(), "symbol": symbol, "inserted_at": now, "updated_at": now}
                    for symbol in chunk
                ]
                statement = (
                    dialect.insert(settings)
                    .values(rows)
                    .on_conflict_do_nothing(index_elements=[settings.c.symbol])
                )
                result = await connection.execute(statement)
                inserted += max(result.rowcount, 0)
                if on_chunk is not None:
                    on_chunk(len(chunk))
        return inserted

    async def check_schema(self) -> None:
        """`SchemaOutOfDate`, naming `streamer db upgrade`, unless the schema is current."""
        async with self._connection() as connection:
            await check_schema(connection)
