"""The service's way out of the process, for the benchmarks that measure it: pub/sub's tap
appends every batch to one journal, which each sink runner reads at its own cursor."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from streamer.journal import Journal
from streamer.sinks.base import Sink
from streamer.sinks.runner import SinkRunner, cursor_name
from streamer.stream.pubsub import PubSub


@contextlib.asynccontextmanager
async def journaled(
    sinks: Sequence[Sink], pubsub: PubSub, folder: Path
) -> AsyncIterator[list[SinkRunner]]:
    """Running `SinkRunner`s fed from `pubsub` through one journal in `folder`, as in `run`."""
    journal = Journal.open(folder)
    runners = [SinkRunner(sink) for sink in sinks]
    for runner in runners:
        runner.attach(journal.cursor(cursor_name(runner.name)))
    pubsub.tap(journal.record)
    tasks = [asyncio.create_task(runner.run(lambda: None)) for runner in runners]
    tasks.append(asyncio.create_task(journal.run_syncer()))
    try:
        yield runners
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        pubsub.untap(journal.record)
        journal.close()


def lost(runner: SinkRunner) -> int:
    """Trades the runner announced or the journal's budget took: none, in a good run."""
    cursor = runner.cursor
    return runner.lost + (cursor.lost_total if cursor is not None else 0)
