"""The status page in a real browser, driven from async tests.

Selenium blocks while the browser works, and the service under test runs in the test's own event
loop, so every browser call goes through a worker thread (`asyncio.to_thread`): the service keeps
streaming while the test waits for the page.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By

DEADLINE = 20.0
"""Seconds a page condition may take before the test fails; far beyond a loaded machine."""
POLL = 0.1


class LivePage:
    """One browser tab on the page at `base_url`."""

    def __init__(self, driver: WebDriver, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url

    async def open(self) -> LivePage:
        await asyncio.to_thread(self.driver.get, self.base_url + "/")
        await self.until(
            "return window.streamerStats && window.streamerStats.snapshots > 0",
            "the first snapshot of the live feed",
        )
        return self

    async def js(self, script: str, *args: Any) -> Any:
        return await asyncio.to_thread(self.driver.execute_script, script, *args)

    async def until(self, script: str, what: str, *args: Any, deadline: float = DEADLINE) -> Any:
        """Poll `script` until it returns something truthy; fail naming `what` if it never does."""
        end = time.monotonic() + deadline
        while True:
            result = await self.js(script, *args)
            if result:
                return result
            if time.monotonic() > end:
                raise AssertionError(f"the page never showed {what} within {deadline:.0f} s")
            await asyncio.sleep(POLL)

    async def click(self, css: str) -> None:
        element = await asyncio.to_thread(self.driver.find_element, By.CSS_SELECTOR, css)
        await asyncio.to_thread(element.click)

    async def type(self, css: str, text: str) -> None:
        element = await asyncio.to_thread(self.driver.find_element, By.CSS_SELECTOR, css)
        await asyncio.to_thread(element.clear)
        await asyncio.to_thread(element.send_keys, text)

    async def row(self, symbol: str) -> dict[str, Any]:
        """What the table shows for `symbol`, once its row is rendered."""
        found: dict[str, Any] = await self.until(ROW_SCRIPT, f"the row of {symbol}", symbol)
        return found

    async def screenshot(self, path: str) -> None:
        await asyncio.to_thread(self.driver.save_screenshot, path)


ROW_SCRIPT = """
const el = [...document.querySelectorAll('#rows .row')]
  .find(r => !r.hidden && r.dataset.symbol === arguments[0]);
if (!el) return null;
const c = el.children;
const text = k => el.cells[k] ? el.cells[k].textContent : null;
return {state: text('state'), price: text('price'), rate: text('rate'), age: text('age'),
  gaps: text('gaps'),
  alert: el.classList.contains('alert'), button: el.button.textContent,
  stateColor: getComputedStyle(el.cells.state).color,
  chart: el.chart.toDataURL(), count: c.length};
"""
