"""The `streamer` command: each sub-command lives beside the code it drives."""

from __future__ import annotations

import typer

from streamer import __version__
from streamer.commands import (
    demo_command,
    run_command,
    start_command,
    status_command,
    stop_command,
    tail_command,
)
from streamer.db.cli import db_app, seed_command
from streamer.mock_exchange.cli import mock_exchange_command
from streamer.recording.cli import record_command, verify_command

app = typer.Typer(
    name="streamer",
    help="Stream live Binance trade events for a persisted set of symbols.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"streamer {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Stream live Binance trade events for a persisted set of symbols."""


# Sub-commands are registered below, one line each.
app.add_typer(db_app, name="db")
app.command("seed")(seed_command)
app.command("mock-exchange")(mock_exchange_command)
app.command("run")(run_command)
app.command("start")(start_command)
app.command("stop")(stop_command)
app.command("status")(status_command)
app.command("tail")(tail_command)
app.command("demo")(demo_command)
app.command("record")(record_command)
app.command("verify")(verify_command)


def main() -> None:
    app()
