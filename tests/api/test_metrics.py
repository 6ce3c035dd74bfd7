"""`/metrics`: Prometheus exposition that passes `promtool check metrics` and keeps its promises:
counters never go down, staleness is alertable, the process and the build are described."""

from __future__ import annotations

import asyncio
import os
import shutil
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streamer import __version__
from streamer.stream.pubsub import topic
from streamer.tail import follow
from tests.api.conftest import Running
from tests.polling import eventually


async def scrape(running: Running) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every sample of `/metrics`, by name then by sorted labels."""
    text = (await running.http.get("/metrics")).text
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("promtool (Debian package prometheus) is required in CI")
        pytest.skip("promtool is not installed (Debian package prometheus)")
    return found


async def test_the_exposition_passes_promtool(running: Running) -> None:
    """`promtool check metrics` finds no problem in a scrape of a streaming service."""
    await running.http.post("/api/settings/ETHUSDT/start")
    await eventually(lambda: running.service.hub.stats("ETHUSDT") is not None)
    text = (await running.http.get("/metrics")).content

    check = await asyncio.create_subprocess_exec(
        promtool(),
        "check",
        "metrics",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await check.communicate(text)

    assert check.returncode == 0, output
    assert output == b""


async def test_last_trade_time_counters_and_no_rate_gauge(running: Running) -> None:
    """A streaming symbol has a recent last-trade timestamp in seconds and a trades counter;
    the rate is left to `rate()` (no gauge of it)."""
    await running.http.post("/api/settings/ETHUSDT/start")
    await eventually(
        lambda: (stats := running.service.hub.stats("ETHUSDT")) is not None and stats.trades > 0
    )

    samples = await scrape(running)

    last = samples["streamer_last_trade_timestamp_seconds"][(("symbol", "ETHUSDT"),)]
    assert abs(last - time.time()) < 3600
    assert samples["streamer_trades_total"][(("symbol", "ETHUSDT"),)] > 0
    assert "streamer_trade_rate" not in samples


async def test_build_process_and_python_are_described(running: Running) -> None:
    """The build's version, the process's memory and CPU and Python's GC are exported."""
    samples = await scrape(running)

    ((labels, value),) = samples["streamer_build_info"].items()
    assert dict(labels)["version"] == __version__
    assert value == 1.0
    assert samples["process_resident_memory_bytes"][()] > 0
    assert "python_info" in samples
    assert "python_gc_collections_total" in samples


async def test_dropped_events_stay_counted_after_the_subscriber_closes(running: Running) -> None:
    """Events dropped by a slow subscriber still count once it has gone: the counter never
    goes down."""
    await running.http.post("/api/settings/ETHUSDT/start")
    slow = running.service.pubsub.subscribe(topic("ETHUSDT"), maxlen=1)
    await eventually(lambda: slow.dropped > 0)
    with slow:
        before = (await scrape(running))["streamer_subscriber_dropped_total"][()]

    after = (await scrape(running))["streamer_subscriber_dropped_total"][()]

    assert before > 0
    assert after >= before


async def test_websocket_clients_and_exchange_connects_are_counted(running: Running) -> None:
    """A connected `/ws/trades` client shows in the gauge and the accepted counter, and the
    exchange connection attempts are counted."""
    await running.http.post("/api/settings/ETHUSDT/start")
    url = running.base_url.replace("http://", "ws://") + "/ws/trades?symbols=ETHUSDT"
    events: list[object] = []
    client = asyncio.create_task(follow(url, events.append))
    try:
        await eventually(lambda: len(events) > 0)
        samples = await scrape(running)
    finally:
        client.cancel()
        await asyncio.gather(client, return_exceptions=True)

    assert samples["streamer_ws_clients"][()] == 1
    assert samples["streamer_ws_clients_accepted_total"][()] >= 1
    assert samples["streamer_exchange_connects_total"][()] >= 1
    assert samples["streamer_exchange_connections"][()] >= 1
