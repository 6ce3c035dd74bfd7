"""The `streamer` command's own behaviour, apart from its sub-commands."""

import pytest
from typer.testing import CliRunner

from streamer import __version__
from streamer.cli import app


def test_version_flag_prints_the_installed_version() -> None:
    """`streamer --version` names the installed package version and exits 0."""
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"streamer {__version__}"


@pytest.mark.parametrize(
    "args",
    [
        ["status", "--port", "99999"],
        ["status", "--port", "0"],
        ["start", "ETHUSDT", "--port", "-1"],
        ["tail", "ETHUSDT", "--port", "65536"],
        ["run", "--port", "70000"],
        ["seed", "--exchange-url", "http://127.0.0.1:99999"],
    ],
)
def test_a_port_outside_the_tcp_range_is_a_usage_error(args: list[str]) -> None:
    """Every command refuses a port outside 1-65535 with exit 2, before doing anything."""
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
