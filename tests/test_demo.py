"""`streamer demo` as a library call: it stops by itself, however early it is asked to."""

from __future__ import annotations

import io

from rich.console import Console

from streamer.demo import run_demo


async def test_a_demo_asked_to_stop_at_once_still_stops_cleanly() -> None:
    """`duration=0` cannot race the start-up: the demo comes up, stops, and returns 0."""
    output = io.StringIO()

    code = await run_demo(
        ["ETHUSDT"], speed=1000.0, port=0, duration=0.0, console=Console(file=output)
    )

    assert code == 0
    assert "demo stopped" in output.getvalue()
