"""`streamer record DIR SYMBOL...` and `streamer verify DIR`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from streamer.cli_support import exit_on_errors, fail, settings_from
from streamer.commands import LogLevel, RestUrl, WsUrl, normalized
from streamer.config import Settings
from streamer.logs import configure_logging
from streamer.sinks.base import SinkError


def record_command(
    folder: Annotated[Path, typer.Argument(help="The recording's folder (created if needed).")],
    symbols: Annotated[list[str], typer.Argument(help="Symbols, e.g. ETHUSDT btcusdt")],
    ws_url: WsUrl = None,
    rest_url: RestUrl = None,
    log_level: LogLevel = None,
) -> None:
    """Record every trade of SYMBOLS into FOLDER as Parquet until Ctrl-C.

    Run it again to go on where it stopped; gaps the exchange cannot fill go to the recording's
    gap ledger (FOLDER/_gaps).
    """
    wanted = normalized(symbols)
    folder = folder.resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise fail(f"cannot create {folder}: {error}") from None
    settings = settings_from(ws_url=ws_url, rest_url=rest_url, log_level=log_level)
    configure_logging(settings.log_level)
    with exit_on_errors():
        try:
            code = asyncio.run(_record(folder, wanted, settings))
        except SinkError as error:
            raise fail(str(error)) from None
    raise typer.Exit(code)


async def _record(folder: Path, symbols: list[str], base: Settings) -> int:
    from streamer.recording.recorder import (
        prepare_database,
        recorded_positions,
        recorder_settings,
    )
    from streamer.service import Service

    settings = recorder_settings(folder, base)
    positions = await recorded_positions(folder)
    await prepare_database(settings.resolved_database_url(), symbols, positions)
    service = Service(settings, http=False)
    typer.echo(f"recording {', '.join(symbols)} into {folder} until Ctrl-C")
    return await service.run()


def verify_command(
    folder: Annotated[
        Path, typer.Argument(help="A recording made by `streamer record`, or CSV trade files.")
    ],
) -> None:
    """Check a recording for holes, duplicates and rows out of order.

    Prints the id range and count per symbol and day, one line per hole the gap ledger does not
    explain, duplicate or reordering, then a summary. Exits 1 unless the recording is clean.
    """
    from streamer.recording.layout import JOURNAL
    from streamer.recording.verify import RecordingError, verify

    if not folder.is_dir():
        raise fail(f"{folder} is not a folder", 2)
    try:
        summary = verify(folder)
    except RecordingError as error:
        raise fail(str(error)) from None
    for report in summary.reports:
        for line in report.lines():
            typer.echo(line)
    if summary.journalled:
        typer.echo(
            f"note: {summary.journalled} trades are in {folder / JOURNAL}, not yet in parts: "
            "the recorder is running, or rolls them into parts when it starts again"
        )
    typer.echo(summary.line())
    raise typer.Exit(0 if summary.clean else 1)
