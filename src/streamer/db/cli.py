"""`streamer db upgrade|current` and `streamer seed`: the settings database from the shell.

Every failure a user can cause or meet (bad URL, database down, wrong login, exchange refusing
this location, a truncated response) ends as one `error: ...` line on stderr and exit code 1;
misuse of the flags exits 2. Nothing is written unless everything it depends on is valid.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from streamer.binance.rest import BinanceRest, ExchangeInfo, decode_exchange_info
from streamer.cli_support import DatabaseUrl, exit_on_errors, fail
from streamer.config import Settings, checked_url
from streamer.db.engine import create_engine, upgrade_command
from streamer.db.migrate import current, head, known_revisions, upgrade
from streamer.db.seed import seed
from streamer.db.urls import display_url, parse_url

T = TypeVar("T")

db_app = typer.Typer(
    name="db",
    help="Create the settings database, migrate it, and see where it stands.",
    no_args_is_help=True,
)


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    with exit_on_errors():
        return asyncio.run(coroutine)


def _database_url(option: str | None) -> str:
    return option or Settings().resolved_database_url()


@db_app.command("upgrade")
def upgrade_cli(database_url: DatabaseUrl = None) -> None:
    """Create the database if it does not exist and apply every migration."""
    url = _database_url(database_url)
    _run(upgrade(url))
    with exit_on_errors():
        shown = display_url(parse_url(url))
    typer.echo(f"{shown}: at revision {head()} (up to date)")


@db_app.command("current")
def current_cli(database_url: DatabaseUrl = None) -> None:
    """Say which migration the database is at, and what to run if it is behind."""
    url = _database_url(database_url)
    with exit_on_errors():
        parsed = parse_url(url)
    revision = _run(current(url))
    latest = head()
    where = display_url(parsed)
    if revision == latest:
        typer.echo(f"{where}: at revision {revision} (up to date)")
    elif revision is None:
        typer.echo(f"{where}: no schema yet; run `{upgrade_command(parsed)}`")
    elif revision not in known_revisions():
        typer.echo(f"{where}: at revision {revision}, newer than this streamer ({latest})")
    else:
        typer.echo(
            f"{where}: at revision {revision}, {latest} is available; "
            f"run `{upgrade_command(parsed)}`"
        )


def _load_file(path: Path) -> ExchangeInfo:
    try:
        body = path.read_bytes()
    except OSError as exc:
        raise fail(f"cannot read {path}: {exc.strerror or exc}") from None
    with exit_on_errors():
        return decode_exchange_info(body, str(path))


async def _fetch(base_url: str) -> ExchangeInfo:
    async with BinanceRest(base_url) as rest:
        return await rest.exchange_info()


def seed_progress(console: Console) -> Progress:
    """A progress bar for the seed that draws only on a terminal, never into a pipe or log."""
    return Progress(
        TextColumn("seeding"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


async def _seed(url: str, info: ExchangeInfo, source: str) -> str:
    await upgrade(url)
    engine = create_engine(url)
    try:
        with seed_progress(Console(stderr=True)) as progress:
            task = progress.add_task("seeding", total=len(info.symbols))
            report = await seed(
                engine,
                (entry.symbol for entry in info.symbols),
                on_chunk=lambda n: progress.advance(task, n),
            )
    finally:
        await engine.dispose()
    gone = report.gone_line()
    if gone is not None:
        typer.echo(gone)
    return f"seeded {display_url(parse_url(url))} from {source}: {report.summary()}"


def seed_command(
    database_url: DatabaseUrl = None,
    exchange_url: Annotated[
        str | None,
        typer.Option(
            "--exchange-url",
            help="Base URL of the exchange's REST API, e.g. https://data-api.binance.vision "
            "[env: STREAMER_REST_URL; default: https://api.binance.com]",
            show_default=False,
        ),
    ] = None,
    from_file: Annotated[
        Path | None,
        typer.Option(
            "--from-file",
            help="A saved GET /api/v3/exchangeInfo response to read instead of the network.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Add the exchange's symbols to the settings database, all `off`; safe to repeat."""
    if exchange_url is not None and from_file is not None:
        raise fail("give either --exchange-url or --from-file, not both", 2)
    if exchange_url is not None:
        try:
            checked_url(exchange_url)
        except ValueError as error:
            raise fail(f"invalid --exchange-url: {error}", 2) from None
    url = _database_url(database_url)
    with exit_on_errors():
        parse_url(url)  # a bad URL is reported before any download
    if from_file is not None:
        info, source = _load_file(from_file), str(from_file)
    else:
        base_url = exchange_url or Settings().rest_url
        info, source = _run(_fetch(base_url)), base_url
    typer.echo(_run(_seed(url, info, source)))


__all__ = ["db_app", "seed_command"]
