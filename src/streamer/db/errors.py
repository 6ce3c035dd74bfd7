"""What can go wrong with the settings database, each as one line a user can act on."""

from __future__ import annotations

from streamer.errors import StreamerError


class DatabaseError(StreamerError):
    """Base of every settings-database failure; `str()` is a complete one-line explanation."""


class DatabaseUnavailable(DatabaseError):
    """The database cannot be reached or refuses us (down, wrong host or port, wrong login)."""


class DatabaseCorrupt(DatabaseError):
    """The database answers, but is not one (an SQLite file of something else): no retry helps."""


class InvalidDatabaseUrl(DatabaseUnavailable, ValueError):
    """The URL names no database this project can use (so none is available)."""


class SchemaOutOfDate(DatabaseError):
    """The schema is missing or behind the migrations shipped with this version."""


class DatabaseMissing(SchemaOutOfDate):
    """The PostgreSQL database itself does not exist yet; `streamer db upgrade` creates it."""


class UnknownSymbol(DatabaseError, LookupError):
    """The symbol has no row in `settings`; `streamer seed` adds the exchange's symbols."""

    def __init__(self, symbol: str) -> None:
        super().__init__(
            f"unknown symbol {symbol}: it is not in the settings table (run `streamer seed` "
            "to add the exchange's symbols)"
        )
        self.symbol = symbol
