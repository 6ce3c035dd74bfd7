"""The `streamer` command's own behaviour, apart from its sub-commands."""

from typer.testing import CliRunner

from streamer import __version__
from streamer.cli import app


def test_version_flag_prints_the_installed_version() -> None:
    """`streamer --version` names the installed package version and exits 0."""
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"streamer {__version__}"
