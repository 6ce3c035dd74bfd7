"""The live status page in real headless Chromium against a running service on the mock."""

from __future__ import annotations

from tests.browser.conftest import SYMBOLS
from tests.browser.page import LivePage


async def test_prices_and_charts_move(page: LivePage) -> None:
    """Each streaming symbol shows a last price, and its price and chart change as trades come."""
    await page.until(
        "return [...document.querySelectorAll('#rows .row')].filter(r => !r.hidden"
        " && r.dataset.state === 'streaming').length === arguments[0]",
        "every symbol streaming",
        len(SYMBOLS),
    )
    await page.click('#rows .row[data-symbol="ETHUSDT"]')
    first = await page.row("ETHUSDT")
    await page.until(
        "const r = [...document.querySelectorAll('#rows .row')]"
        ".find(r => r.dataset.symbol === 'ETHUSDT');"
        "return r.cells.price.textContent !== arguments[0] && r.chart.toDataURL() !== arguments[1]",
        "a new ETHUSDT price and a redrawn chart",
        first["price"],
        first["chart"],
    )
    assert float((await page.row("ETHUSDT"))["price"]) > 0
    points = await page.until(
        "return document.querySelector('#detail-chart .u-over') &&"
        " document.getElementById('detail-symbol').textContent",
        "the detail chart of the selected symbol",
    )
    assert points == "ETHUSDT"
