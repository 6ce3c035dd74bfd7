"""Fixtures for streaming tests: a hub wired to the `mock_exchange`, with short timings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import pytest

from streamer.binance.config import StreamerConfig
from streamer.binance.hub import StreamHub
from streamer.mock_exchange import MockExchange
from streamer.pubsub import PubSub
from tests.fixtures.mock_exchange import fast_streamer_config


@pytest.fixture
def streamer_config(mock_exchange: MockExchange) -> StreamerConfig:
    """Short backoffs and watchdogs, pointed at the mock."""
    return fast_streamer_config(mock_exchange)


@pytest.fixture
def pubsub() -> PubSub:
    return PubSub()


@pytest.fixture
def make_hub(streamer_config: StreamerConfig, pubsub: PubSub) -> Callable[..., StreamHub]:
    """Builds a hub with config overrides; the hub's run task is started by `running`."""

    def make(**overrides: object) -> StreamHub:
        return StreamHub(replace(streamer_config, **overrides), pubsub)  # type: ignore[arg-type]

    return make


@pytest.fixture
async def running() -> AsyncIterator[Callable[[StreamHub], StreamHub]]:
    """Runs hubs for the duration of a test and stops them afterwards."""
    tasks: list[asyncio.Task[None]] = []

    def run(hub: StreamHub) -> StreamHub:
        tasks.append(asyncio.create_task(hub.run()))
        return hub

    yield run
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture
async def hub(
    make_hub: Callable[..., StreamHub], running: Callable[[StreamHub], StreamHub]
) -> StreamHub:
    """A running hub with the default test config."""
    return running(make_hub())
