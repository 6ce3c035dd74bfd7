"""`make screenshots`: the live page with every symbol streaming, its pictures and its pace.

The mock exchange runs in a process of its own (recorded speed, Binance's limits on) with all
1,695 symbols of the recorded exchangeInfo; the service streams every one of them; headless
Chromium opens the page. The page measures itself (`window.streamerStats`): how long applying
one tick of the live feed takes, and how long rendering a frame (the visible rows, their charts,
the totals, the selected symbol's chart) takes. Those figures go into docs/benchmarks.md
(between the page markers, which `make bench` keeps), and three screenshots into
docs/screenshots/: the table with a symbol's chart open, a dropped exchange connection whose
reconnects are refused, and the supervision tree.

Run: `python -m bench.page` (what `make screenshots` runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from tests.browser.chromium import chromium
from tests.browser.page import LivePage

from bench.docs import write_section
from bench.mock_process import mock_exchange
from streamer.binance.rest import BinanceRest
from streamer.config import Settings
from streamer.demo import prepare_database
from streamer.service import Service

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "docs" / "screenshots"
STREAMING_DEADLINE = 120.0
WARM_SECONDS = 5.0
MEASURE_SECONDS = 20.0
WIDTH, HEIGHT = 1400, 1000
STOP_DEADLINE = 30.0

STATS = "return window.streamerStats"
RESET = "for (const k of Object.keys(window.streamerStats)) window.streamerStats[k] = 0"
COUNT_STREAMING = (
    "return [...document.querySelectorAll('#rows .row')].length &&"
    " Number(document.getElementById('total-streaming').textContent)"
)


async def streaming_count(page: LivePage) -> int:
    return int(await page.js(COUNT_STREAMING) or 0)


async def measure(page: LivePage, symbols: int) -> dict[str, float]:
    """Let the page run with every symbol streaming, scrolling now and then, and read its stats."""
    await asyncio.sleep(WARM_SECONDS)
    load_at_start = os.getloadavg()[0]
    await page.js(RESET)
    end = time.monotonic() + MEASURE_SECONDS
    step = 0
    while time.monotonic() < end:
        step += 1
        await page.js("document.getElementById('viewport').scrollTop = arguments[0]", step * 900)
        await asyncio.sleep(1.0)
    stats: dict[str, float] = await page.js(STATS)
    ticks = max(1.0, stats["ticks"])
    frames = max(1.0, stats["frames"])
    return {
        "page_symbols": symbols,
        "page_symbols_streaming": await streaming_count(page),
        "page_ticks": stats["ticks"],
        "page_tick_kb_mean": round(stats["tickBytes"] / ticks / 1000, 1),
        "page_tick_apply_ms_mean": round(stats["sumApplyMs"] / ticks, 2),
        "page_tick_apply_ms_max": round(stats["maxApplyMs"], 2),
        "page_frames": stats["frames"],
        "page_render_ms_mean": round(stats["sumRenderMs"] / frames, 2),
        "page_render_ms_max": round(stats["maxRenderMs"], 2),
        "page_rows_rendered": stats["rowsRendered"],
        "page_load_1m_at_start": round(load_at_start, 2),
        "page_load_1m_at_end": round(os.getloadavg()[0], 2),
    }


async def screenshots(page: LivePage, rest_url: str) -> None:
    """The table with a busy symbol's chart, a connection cut and refused, and the tree."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.js("document.getElementById('viewport').scrollTop = 0")
    await page.click('#head [data-key="rate"]')
    await asyncio.sleep(1.5)
    await page.click("#rows .row")
    await asyncio.sleep(8)
    await page.screenshot(str(SHOTS / "page.png"))

    async with httpx.AsyncClient(base_url=rest_url + "/_mock/", timeout=10) as mock:
        connections: list[dict[str, Any]] = (await mock.get("connections")).json()
        await mock.post("faults/refuse", params={"status": 429, "retry_after": 30})
        await mock.post("faults/drop", params={"connection": connections[0]["id"]})
        await page.click('#head [data-key="state"]')
        await page.until(
            "return document.getElementById('total-alerts').textContent", "symbols in alert"
        )
        await asyncio.sleep(4)
        await page.js("document.getElementById('viewport').scrollTop = 0")
        await asyncio.sleep(1.5)
        await page.screenshot(str(SHOTS / "page-fault.png"))
        await mock.post("faults/accept")

    await page.click('#tabs [data-tab="tree"]')
    await page.type("#tree-filter", "ETH")
    await asyncio.sleep(2)
    await page.screenshot(str(SHOTS / "page-tree.png"))


def write_doc(figures: dict[str, float]) -> None:
    """The page's section of docs/benchmarks.md."""
    rows = "\n".join(f"| `{name}` | {value:g} |" for name, value in figures.items())
    write_section(
        "page",
        f"""## The live page

Produced by `make screenshots` (`python -m bench.page`), which rewrites this section only:
headless Chromium on the page while the service streams every symbol of the recorded
exchangeInfo from the mock at recorded speed, measured in the page with `performance.now()` over
{MEASURE_SECONDS:.0f} s of scrolling. `page_tick_apply_ms_*`: applying one message of
`/ws/live` (parse it, fold its deltas into the 1,695 rows), `page_ticks` of them, each
`page_tick_kb_mean` kB of JSON on average.
`page_render_ms_*`: one frame's rendering (filter and sort all rows, fill the visible ones,
`page_rows_rendered`, draw their sparklines and gap timelines, the totals and the selected
symbol's chart), `page_frames` of them. Apply plus render well under 16 ms leaves the page free
to scroll at 60 frames per second. The browser, the service and the mock share the machine's
2 cores with whatever else runs (`page_load_1m_*`), which shows in these figures.

| figure | value |
|---|---|
{rows}
""",
    )


async def run(ws_url: str, rest_url: str, folder: Path) -> dict[str, float]:
    async with BinanceRest(rest_url) as rest:
        symbols = [s.symbol for s in (await rest.exchange_info()).symbols]
    url = f"sqlite:///{folder / 'streamer.db'}"
    await prepare_database(url, rest_url, symbols)
    listening: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    service = Service(
        Settings(database_url=url, ws_url=ws_url, rest_url=rest_url, port=0, log_level="WARNING"),
        on_listening=lambda _, port: listening.set_result(port),
    )
    running = asyncio.create_task(service.root.run())
    driver = await asyncio.to_thread(chromium, folder / "profile", WIDTH, HEIGHT)
    try:
        port = await asyncio.wait_for(listening, 60)
        page = await LivePage(driver, f"http://127.0.0.1:{port}").open()
        deadline = time.monotonic() + STREAMING_DEADLINE
        while await streaming_count(page) < len(symbols) and time.monotonic() < deadline:  # noqa: ASYNC110 - the page is polled
            await asyncio.sleep(1)
        figures = await measure(page, len(symbols))
        await screenshots(page, rest_url)
        return figures
    finally:
        await asyncio.to_thread(driver.quit)
        await service.root.stop()
        # The figures are taken; a tree slow to finish must not keep the script waiting.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(running, STOP_DEADLINE)


def main() -> None:
    with (
        tempfile.TemporaryDirectory(prefix="bench-page-") as folder,
        mock_exchange("--speed=1") as mock,
    ):
        figures = asyncio.run(run(mock.ws_url, mock.rest_url, Path(folder)))
    write_doc(figures)
    for name, value in figures.items():
        print(f"{name}: {value:g}")


if __name__ == "__main__":
    main()
