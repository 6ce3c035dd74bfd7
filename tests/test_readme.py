"""The README's embedding example runs as printed, against the mock exchange."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

from streamer.mock_exchange import MockExchange
from tests.e2e.processes import child_env

README = Path(__file__).resolve().parents[1] / "README.md"
EXAMPLE = re.compile(r"<!-- embedding-example -->\n```python\n(.*?)```", re.DOTALL)


@pytest.mark.timeout(60)
async def test_the_embedding_example_streams_and_ends_cleanly(
    mock_exchange: MockExchange, tmp_path: Path
) -> None:
    """The example, pointed at the mock's port, prints ten trades and the status, exits 0,
    and writes nothing to stderr (no crash or cancellation lines at the end)."""
    match = EXAMPLE.search(README.read_text())
    assert match is not None, "the README lost its embedding example"
    code = match.group(1).replace("127.0.0.1:8765", mock_exchange.rest_url.split("//")[1])
    (tmp_path / "example.py").write_text(code)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "example.py",
        cwd=tmp_path,
        env=child_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    lines = stdout.decode().splitlines()
    assert process.returncode == 0, stderr.decode()
    assert len([line for line in lines if re.fullmatch(r"ADAUSDT \d+ [\d.]+ [\d.]+", line)]) == 10
    assert re.fullmatch(r"ADAUSDT streaming \d+ trades", lines[-1]), lines
    assert stderr.decode() == ""
    assert (tmp_path / "trades.db").is_file()
