"""How fast the mock exchange pushes trades to one connection.

The mock (`streamer mock-exchange --speed max`, limits off) runs in its own process; a
count-only picows client subscribes four recorded symbols on one combined connection and counts
frames: `mock_frames_per_s`. The run also reads the mock's CPU over the same span:
`mock_frames_busy` near 1 means the mock, not the reader, set the pace. `python -m bench` sets
this rate beside the streamer's own client's, measured against the same mock in the same run. The
clock starts at the first frame and stops at the last counted one, not at the close handshake.

Run: `python -m bench.mock_exchange` prints `name: value` lines.
"""

from __future__ import annotations

import asyncio
import time

from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from bench.mock_process import FULL_SPEED, MockProcess, mock_exchange, only_symbols

FRAMES = 3_000_000
STREAMS = ("adausdt@trade", "btcusdc@trade", "tusdusdt@trade", "paxusdt@trade")


class _Counter(WSListener):
    """Counts text frames; notes the time (and the mock's CPU) at the first and the `target`-th."""

    def __init__(self, target: int, mock: MockProcess, done: asyncio.Future[None]) -> None:
        self.target = target
        self.mock = mock
        self.done = done
        self.count = 0
        self.first = self.last = 0.0
        self.mock_first = self.mock_last = 0.0

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is not WSMsgType.TEXT:
            return
        self.count += 1
        if self.count == 1:
            self.first = time.perf_counter()
            self.mock_first = self.mock.cpu_seconds()
        elif self.count == self.target:
            self.last = time.perf_counter()
            self.mock_last = self.mock.cpu_seconds()
            if not self.done.done():
                self.done.set_result(None)
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"disconnected after {self.count} frames"))


async def _count(mock: MockProcess, frames: int) -> dict[str, float]:
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    url = f"{mock.ws_url}/stream?streams={'/'.join(STREAMS)}"
    transport, counter = await ws_connect(lambda: _Counter(frames, mock, done), url)
    await asyncio.wait_for(done, 60)
    await transport.wait_disconnected()
    assert isinstance(counter, _Counter)
    seconds = counter.last - counter.first
    return {
        "mock_frames_per_s": (frames - 1) / seconds,
        "mock_frames_busy": (counter.mock_last - counter.mock_first) / seconds,
    }


def run(frames: int = FRAMES) -> dict[str, float]:
    """Frames per second one connection gets from a mock in another process, and its CPU share."""
    symbols = [stream.split("@")[0].upper() for stream in STREAMS]
    with only_symbols(*symbols) as data, mock_exchange(*FULL_SPEED, f"--data-dir={data}") as mock:
        return asyncio.run(_count(mock, frames))


def main() -> None:
    for name, value in run().items():
        print(f"{name}: {value:.2f}" if value < 100 else f"{name}: {value:.0f}")


if __name__ == "__main__":
    main()
