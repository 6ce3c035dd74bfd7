"""The service's way out of the process, for the benchmarks that measure it: pub/sub's tap
appends every batch to a journal, which a sink runner reads at its own cursor."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from streamer.journal import Journal
from streamer.sinks.base import Sink
from streamer.sinks.runner import RunnerOptions, SinkRunner
from streamer.stream.pubsub import PubSub


@contextlib.asynccontextmanager
async def journaled(
    sink: Sink, pubsub: PubSub, folder: Path, options: RunnerOptions | None = None
) -> AsyncIterator[SinkRunner]:
    """A running `SinkRunner` fed from `pubsub` through a journal in `folder`, as in `run`."""
    journal = Journal.open(folder)
    runner = SinkRunner(sink, options)
    runner.attach(journal.cursor("bench"))
    pubsub.tap(journal.record)
    tasks = [
        asyncio.create_task(runner.run(lambda: None)),
        asyncio.create_task(journal.run_syncer()),
    ]
    try:
        yield runner
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        pubsub.untap(journal.record)
        journal.close()
