"""`streamer verify DIR`: one line per symbol and day, one per problem, then a summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from streamer.cli_support import fail
from streamer.recording.verify import RecordingError, verify


def verify_command(
    folder: Annotated[
        Path, typer.Argument(help="A recording made by `streamer record`, or CSV trade files.")
    ],
) -> None:
    """Check a recording: id range and count per symbol and day, holes the gap ledger does not
    explain, duplicates and out-of-order rows. Exits 1 unless the recording is clean."""
    if not folder.is_dir():
        raise fail(f"{folder} is not a folder", 2)
    try:
        summary = verify(folder)
    except RecordingError as error:
        raise fail(str(error)) from None
    for report in summary.reports:
        for line in report.lines():
            typer.echo(line)
    typer.echo(summary.line())
    raise typer.Exit(0 if summary.clean else 1)
