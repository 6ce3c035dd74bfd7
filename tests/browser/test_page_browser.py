"""The live status page in real headless Chromium against a running service on the mock."""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver

from streamer.mock_exchange import MockExchange
from tests.browser.conftest import SYMBOLS, TOKEN
from tests.browser.page import ROW_SCRIPT, LivePage
from tests.e2e.inprocess import Running, api, running_service
from tests.ports import closed_port


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


async def test_a_stall_turns_the_symbols_state(
    page: LivePage, service: Running, mock_exchange: MockExchange
) -> None:
    """A stalled exchange connection (and refused reconnects) shows as an alert state, then heals.

    The stall threshold is the fast test configuration's `dead_after` (1 s); the page must leave
    "streaming" for a coloured alert state and come back once the exchange answers again.
    """
    streaming = await page.row("ETHUSDT")
    assert streaming["state"] == "streaming"
    mock_exchange.faults.refuse(429, retry_after=1)
    mock_exchange.faults.stall()
    alert = await page.until(
        "const r = (() => {" + ROW_SCRIPT + "})(); return r && r.state !== 'streaming' && r;",
        "ETHUSDT in an alert state",
        "ETHUSDT",
    )
    assert alert["alert"], alert
    assert alert["stateColor"] != streaming["stateColor"]
    assert await page.js("return document.getElementById('total-alerts').textContent")
    await mock_exchange.faults.accept()
    mock_exchange.faults.resume()
    await page.until(
        "const r = (() => {" + ROW_SCRIPT + "})(); return r && r.state === 'streaming';",
        "ETHUSDT streaming again",
        "ETHUSDT",
    )


async def stop_and_start_from_the_page(page: LivePage, service: Running) -> None:
    """Stop NEOUSDT with its row's button, then start it again from the start form."""
    await page.row("NEOUSDT")
    await page.click('#rows .row[data-symbol="NEOUSDT"] button')
    await page.until(
        "const r = (() => {" + ROW_SCRIPT + "})(); return r && r.state === 'stopped';",
        "NEOUSDT stopped",
        "NEOUSDT",
    )
    assert (await service_api(service, "NEOUSDT"))["status"] == "off"
    await page.type("#start-symbol", "neousdt")
    await page.click("#start-form button")
    await page.until(
        "const r = (() => {" + ROW_SCRIPT + "})(); return r && r.state === 'streaming';",
        "NEOUSDT streaming again",
        "NEOUSDT",
    )
    assert (await service_api(service, "NEOUSDT"))["status"] == "on"


async def service_api(service: Running, symbol: str) -> dict[str, object]:
    response = await api(service, "GET", f"/api/settings/{symbol}")
    found: dict[str, object] = response.json()
    return found


async def test_start_and_stop_without_a_token(page: LivePage, service: Running) -> None:
    """Without a token, the row's stop button and the start form change the running set."""
    await stop_and_start_from_the_page(page, service)


@pytest.mark.parametrize("service_token", [TOKEN])
async def test_start_and_stop_with_a_token(page: LivePage, service: Running) -> None:
    """With a token, the page asks for it once, keeps it for the session, and sends it as a
    bearer header (never in the URL); bulk stop and start of selected rows work with it."""
    await page.row("ADAUSDT")
    await page.click('#rows .row[data-symbol="ADAUSDT"] button')
    await page.until(
        "return !document.getElementById('token-form').hidden", "the token being asked for"
    )
    assert (await service_api(service, "ADAUSDT"))["status"] == "on"
    await page.type("#token-input", TOKEN)
    await page.click("#token-form button")
    assert await page.js("return sessionStorage.getItem('streamer-token')") == TOKEN
    await stop_and_start_from_the_page(page, service)
    for symbol in ("ADAUSDT", "BTCUSDT"):
        await page.click(f'#rows .row[data-symbol="{symbol}"] input[type=checkbox]')
    await page.click("#stop-selected")
    for symbol in ("ADAUSDT", "BTCUSDT"):
        await page.until(
            "const r = (() => {" + ROW_SCRIPT + "})(); return r && r.state === 'stopped';",
            f"{symbol} stopped",
            symbol,
        )
    await page.click("#start-selected")
    for symbol in ("ADAUSDT", "BTCUSDT"):
        await page.until(
            "const r = (() => {" + ROW_SCRIPT + "})(); return r && r.state === 'streaming';",
            f"{symbol} streaming again",
            symbol,
        )
    assert TOKEN not in await page.js("return location.href")


async def test_filter_and_sort(page: LivePage) -> None:
    """Filtering by quote asset or text narrows the rows; clicking a header sorts by it."""
    await page.row("BTCUSDT")
    await page.js(
        "const q = document.getElementById('quote'); q.value = 'USDT';"
        "q.dispatchEvent(new Event('input'));"
    )
    await page.type("#filter", "eth")
    await page.until(
        "return JSON.stringify(" + SHOWN + ") === '[\"ETHUSDT\"]'", "only ETHUSDT shown"
    )
    await page.type("#filter", "usdt")
    await page.until("return " + SHOWN + ".length === 4", "the four USDT symbols")
    await page.click('#head [data-key="symbol"]')
    shown = await page.until(
        "const s = " + SHOWN + "; return s[0] === 'NEOUSDT' && s;", "symbols sorted descending"
    )
    assert shown == sorted(shown, reverse=True)


async def test_the_supervision_tree_updates_live(page: LivePage, service: Running) -> None:
    """The tree view shows the supervisors and a worker per symbol, and follows a stop."""
    await page.click('#tabs [data-tab="tree"]')
    text = await page.until(
        "return arguments[0].every(s => document.querySelector("
        "`#tree li.worker[data-name=\"${s}\"]`)) && document.getElementById('tree').textContent",
        "a worker per symbol in the tree",
        SYMBOLS,
    )
    for name in ("streamer", "streaming", "streamers", "stream_hub", "ETHUSDT"):
        assert name in text
    await api(service, "POST", "/api/settings/ETHUSDT/stop")
    await page.until(
        "return !document.querySelector('#tree li.worker[data-name=\"ETHUSDT\"]')"
        " && document.querySelector('#tree li.worker[data-name=\"BTCUSDT\"]')",
        "ETHUSDT gone from the tree",
    )


SHOWN = "[...document.querySelectorAll('#rows .row')].filter(r => !r.hidden).map(r => r.symbol)"


async def test_new_states_and_an_owner_column_show_without_a_page_change(page: LivePage) -> None:
    """A state the page has no colour for gets the neutral one and counts as an alert; the owner
    column appears once rows name a second owner (several instances share the database).
    """
    await page.row("ETHUSDT")
    assert "owner" not in await page.js("return document.getElementById('head').textContent")
    await page.js(
        "onTick({t: Date.now() / 1000, removed: [],"
        " rows: {ETHUSDT: {state: 'draining', owner: 'instance-b'},"
        " BTCUSDT: {owner: 'instance-a'}}})"
    )
    await page.until(
        "return document.getElementById('head').textContent.includes('owner')", "the owner column"
    )
    shown = await page.js(
        "const r = [...document.querySelectorAll('#rows .row')]"
        ".find(r => r.dataset.symbol === 'ETHUSDT');"
        "return [r.cells.owner.textContent, r.cells.state.className, r.classList.contains('alert')]"
    )
    assert shown == ["instance-b", "state state-other", True]


async def test_a_filled_gap_shows_on_the_rows_timeline(
    page: LivePage, mock_exchange: MockExchange
) -> None:
    """Trade ids skipped by the exchange are back-filled, counted, and marked on the timeline."""
    before = await page.row("BTCUSDT")
    timeline = (
        "return [...document.querySelectorAll('#rows .row')]"
        ".find(r => r.dataset.symbol === 'BTCUSDT').timeline.toDataURL()"
    )
    empty = await page.js(timeline)
    assert before["gaps"] == "0/0"
    mock_exchange.faults.skip_ids("BTCUSDT", 3)
    await page.until(
        "const r = (() => {" + ROW_SCRIPT + "})(); return r && r.gaps === '1/0';",
        "one BTCUSDT gap filled",
        "BTCUSDT",
    )
    await page.until(timeline.replace("return ", "return arguments[0] !== "), "a gap mark", empty)


async def test_a_sink_that_cannot_deliver_shows_on_the_page(
    driver: WebDriver, tmp_path: Path, mock_exchange: MockExchange
) -> None:
    """A sink whose broker is unreachable turns the page's sinks badge red, saying why."""
    url = f"sqlite:///{tmp_path / 'streamer.db'}"
    down = f"nats://127.0.0.1:{closed_port()}?retry_cap=0.2"
    async with running_service(url, mock_exchange, ["ETHUSDT"], sinks=[down]) as running:
        page = await LivePage(driver, running.base_url).open()
        text = await page.until(
            "const b = document.getElementById('sinks');"
            " return !b.hidden && b.textContent.includes('degraded') && b.textContent",
            "the sinks badge degraded",
        )
        title = await page.js("return document.getElementById('sinks').title")
    assert text == "sinks: 1 degraded"
    assert "cannot deliver" in title
    assert "journal:" in title
