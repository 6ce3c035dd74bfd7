"""What every command shares: one way to fail, settings from flags, the database URL option.

Every failure a user can cause or meet ends as one `error: ...` line on stderr and a non-zero
exit (2 for misuse, 1 for everything else), never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from streamer.binance.rest import RestError
from streamer.config import Settings
from streamer.db.errors import DatabaseError
from streamer.symbols import InvalidSymbol

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="sqlite:///path or postgresql://user@host/db (env STREAMER_DATABASE_URL; "
        "default: streamer.db in the user's data directory)",
        show_default=False,
    ),
]


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `error: message` on stderr; raise the result to exit with `code`."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@contextmanager
def exit_on_errors() -> Iterator[None]:
    """Turn the errors a user can meet into one line on stderr and a non-zero exit."""
    try:
        yield
    except (DatabaseError, RestError, InvalidSymbol) as exc:
        raise fail(str(exc)) from None


def settings_from(**overrides: Any) -> Settings:
    """Settings from the environment, each flag that was given taking precedence.

    A value that does not parse (a flag, or a `STREAMER_*` variable) is a usage error naming
    the setting, its variable and what was wrong with it.
    """
    try:
        return Settings(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc'])} (STREAMER_"
            f"{str(e['loc'][0]).upper()}): {e['msg']}"
            for e in error.errors()
        )
        raise fail(f"invalid setting {problems}", 2) from None
