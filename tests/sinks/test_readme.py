"""The README's two broker consumers work as printed: run against a sink's real broker, each
prints the trades the sink published, in order."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from streamer.sinks.urls import sink_from_url
from tests.fixtures.brokers import NatsTarget, RedisTarget
from tests.sinks.events import publish_all, trades

README = Path(__file__).resolve().parents[2] / "README.md"
DEADLINE = 30.0


def snippet(library: str) -> str:
    """The README's Python block that imports `library`."""
    blocks: list[str] = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    [found] = [block for block in blocks if re.search(rf"^import {library}$", block, re.MULTILINE)]
    return found


async def publish(url: str, count: int) -> None:
    sink, _ = sink_from_url(url)
    await publish_all(sink, trades("ETHUSDT", range(1, count + 1)))


def run_until_lines(code: str, tmp_path: Path, count: int) -> list[str]:
    """Run `code` as a program until it printed `count` lines, then stop it."""
    script = tmp_path / "consumer.py"
    script.write_text(code)
    process = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        while len(lines) < count:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line.strip())
    finally:
        process.kill()
        process.communicate(timeout=DEADLINE)
    return lines


def expected(count: int) -> list[str]:
    return [f"{i} 1.5 0.25" for i in range(1, count + 1)]


async def test_the_nats_consumer_prints_the_published_trades(
    nats_target: NatsTarget, tmp_path: Path
) -> None:
    """The nats-py consumer reads every trade of the stream, in order."""
    await publish(nats_target.sink_url(), 5)
    code = (
        snippet("nats")
        .replace("nats://127.0.0.1:4222", nats_target.server)
        .replace("streamer.trades.", f"{nats_target.prefix}.trades.")
    )
    lines = await asyncio.to_thread(run_until_lines, code, tmp_path, 5)
    assert lines == expected(5)


async def test_the_redis_consumer_prints_the_published_trades(
    redis_target: RedisTarget, tmp_path: Path
) -> None:
    """The redis-py consumer reads every trade of the stream, in order."""
    await publish(redis_target.sink_url(), 5)
    server = urlsplit(redis_target.server)
    code = (
        snippet("redis")
        .replace('host="127.0.0.1", port=6379', f'host="{server.hostname}", port={server.port}')
        .replace("streamer:trades:", f"{redis_target.prefix}:trades:")
    )
    if server.path.strip("/") not in ("", "0"):
        pytest.fail("the README's Redis consumer reads database 0")
    lines = await asyncio.to_thread(run_until_lines, code, tmp_path, 5)
    assert lines == expected(5)
