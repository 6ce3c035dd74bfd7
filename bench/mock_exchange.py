"""How fast the mock exchange pushes trades to one connection, next to how fast we read them.

The mock runs in its own process at full speed (`speed=None`). First a count-only picows client
subscribes recorded symbols on one combined connection and counts frames: `mock_frames_per_s`.
Then the streamer's own client (StreamHub, decoding, pub/sub; `bench.client.run_ours`) reads the
same mock: `client_frames_per_s`. The mock must be the faster of the two, or a benchmark of the
client would measure the mock. Clocks start at the first frame and stop at the last counted one,
not at the close handshake.

Run: `python -m bench.mock_exchange` prints `name: value` lines.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from multiprocessing.connection import Connection

from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from bench.client import run_ours
from streamer.mock_exchange import Limits, MockConfig, MockExchange

FRAMES = 3_000_000
CLIENT_FRAMES = 1_000_000
STREAMS = ("adausdt@trade", "btcusdc@trade", "tusdusdt@trade", "paxusdt@trade")


def _serve(pipe: Connection) -> None:
    async def main() -> None:
        limits = Limits(ping_interval=None, lifetime=None, max_messages_per_s=None)
        async with MockExchange(MockConfig(speed=None, limits=limits)) as mock:
            for stream in STREAMS:
                mock.exchange.market(stream.split("@")[0].upper())
            pipe.send(mock.ws_url)
            await asyncio.get_running_loop().run_in_executor(None, pipe.recv)

    asyncio.run(main())


class _Counter(WSListener):
    """Counts text frames; notes the time of the first and of the `target`-th."""

    def __init__(self, target: int, done: asyncio.Future[None]) -> None:
        self.target = target
        self.done = done
        self.count = 0
        self.first = 0.0
        self.last = 0.0

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is not WSMsgType.TEXT:
            return
        self.count += 1
        if self.count == 1:
            self.first = time.perf_counter()
        elif self.count == self.target:
            self.last = time.perf_counter()
            if not self.done.done():
                self.done.set_result(None)
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"disconnected after {self.count} frames"))


async def _count(url: str, frames: int) -> float:
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    transport, counter = await ws_connect(lambda: _Counter(frames, done), url)
    await asyncio.wait_for(done, 60)
    await transport.wait_disconnected()
    assert isinstance(counter, _Counter)
    return (frames - 1) / (counter.last - counter.first)


def run(frames: int = FRAMES, client_frames: int = CLIENT_FRAMES) -> dict[str, float]:
    """Frames per second one connection gets from a mock in another process, and our client's."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    server = context.Process(target=_serve, args=(theirs,), daemon=True)
    server.start()
    try:
        if not ours.poll(60):
            raise RuntimeError("the mock exchange did not start within 60 s")
        url = ours.recv()
        rate = asyncio.run(_count(f"{url}/stream?streams={'/'.join(STREAMS)}", frames))
        read = asyncio.run(run_ours(url, client_frames))
    finally:
        ours.send("stop")
        server.join(10)
        if server.is_alive():
            server.kill()
    client = read["count"] / read["seconds"]
    return {
        "mock_frames_per_s": rate,
        "client_frames_per_s": client,
        "mock_over_client": rate / client,
    }


def main() -> None:
    for name, value in run().items():
        print(f"{name}: {value:.2f}" if value < 100 else f"{name}: {value:.0f}")


if __name__ == "__main__":
    main()
