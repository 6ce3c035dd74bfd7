"""A fast fake trade feed for throughput benchmarks, run in its own process.

It replays the recorded ADAUSDT trades as today's combined-stream frames, with consecutive
trade ids, as fast as the client reads them. The frames are encoded once, before any client
connects, and written in large chunks straight to the socket, so the feed costs far less CPU
per frame than any client and the figure measured is the client's. It answers SUBSCRIBE
requests and accepts streams in the URL, so every client library can point at it; a client
that asks for `@aggTrade` (cryptofeed reads only that one) gets the same trades in that shape.

Run: `python -m bench.feed --frames N` prints `port: P` once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import sys
from pathlib import Path

import msgspec
from picows import (
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    ws_create_server,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "trades"
SYMBOL = "ADAUSDT"
FIRST_ID = 100_000_000_000
CHUNK_FRAMES = 4096


def _header(size: int) -> bytes:
    if size < 126:
        return bytes((0x81, size))
    if size < 65536:
        return bytes((0x81, 126)) + size.to_bytes(2, "big")
    return bytes((0x81, 127)) + size.to_bytes(8, "big")


def recorded_rows(symbol: str = SYMBOL) -> list[list[str]]:
    with gzip.open(DATA / f"{symbol}-2019-06-03.csv.gz", "rt") as fh:
        rows = [line.rstrip("\n").split(";") for line in fh]
    rows.sort(key=lambda row: int(row[4]))
    return rows


TEMPLATES = {
    "trade": b'{"stream":"%s","data":{"e":"trade","E":%d,"s":"%s","t":%d,"p":"%s","q":"%s",'
    b'"T":%d,"m":%s,"M":true}}',
    "aggTrade": b'{"stream":"%s","data":{"e":"aggTrade","E":%d,"s":"%s","a":%d,"p":"%s",'
    b'"q":"%s","f":0,"l":0,"T":%d,"m":%s,"M":true}}',
}


def build_chunks(frames: int, kind: str = "trade", symbol: str = SYMBOL) -> list[bytes]:
    """`frames` websocket frames of consecutive trades, grouped into write-sized chunks.

    `kind` "aggTrade" gives the aggregate-trade shape, for clients that only read that one.
    """
    rows = recorded_rows(symbol)
    template = TEMPLATES[kind]
    stream_b, symbol_b = f"{symbol.lower()}@{kind}".encode(), symbol.encode()
    chunks: list[bytes] = []
    parts: list[bytes] = []
    for i in range(frames):
        row = rows[i % len(rows)]
        payload = template % (
            stream_b,
            int(row[2]),
            symbol_b,
            FIRST_ID + i,
            row[5].encode(),
            row[6].encode(),
            int(row[9]),
            b"true" if row[10] == "t" else b"false",
        )
        parts.append(_header(len(payload)))
        parts.append(payload)
        if len(parts) >= 2 * CHUNK_FRAMES:
            chunks.append(b"".join(parts))
            parts.clear()
    if parts:
        chunks.append(b"".join(parts))
    return chunks


class _Feed(WSListener):
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.transport: WSTransport | None = None
        self.writable = asyncio.Event()
        self.writable.set()
        self.task: asyncio.Task[None] | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.task = asyncio.get_running_loop().create_task(self.blast())

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is WSMsgType.TEXT:
            request = msgspec.json.decode(frame.get_payload_as_bytes())
            if isinstance(request, dict) and "id" in request:
                reply = {"result": None, "id": request["id"]}
                transport.send(WSMsgType.TEXT, msgspec.json.encode(reply))
        elif frame.msg_type is WSMsgType.CLOSE:
            transport.send_close(WSCloseCode.OK)
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self.task is not None:
            self.task.cancel()

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    async def blast(self) -> None:
        assert self.transport is not None
        raw = self.transport.underlying_transport
        await asyncio.sleep(0.3)
        for chunk in self.chunks:
            await self.writable.wait()
            raw.write(chunk)
        await self.writable.wait()


async def serve(frames: int) -> None:
    kinds = {kind: build_chunks(frames, kind) if frames else [] for kind in TEMPLATES}

    def route(request: WSUpgradeRequest) -> _Feed:
        return _Feed(kinds["aggTrade" if b"@aggTrade" in request.path else "trade"])

    server = await ws_create_server(route, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"port: {port}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=2_000_000)
    args = parser.parse_args()
    asyncio.run(serve(args.frames))


if __name__ == "__main__":
    main()
