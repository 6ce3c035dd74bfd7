"""Fixtures of the browser tests: one headless Chromium for the session, a service per test.

In CI (`CI` set) a missing browser fails every test here; on a developer's machine without
Chromium the tests are skipped, saying what to install.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver

from streamer.mock_exchange import MockExchange
from tests.browser.chromium import chromium, missing
from tests.browser.page import LivePage
from tests.e2e.inprocess import Running, running_service

SYMBOLS = ["ETHUSDT", "BTCUSDT", "NEOUSDT", "ADAUSDT"]
TOKEN = "page-s3cret"


@pytest.fixture(scope="session")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """Headless Chromium with a fresh profile, shared by the browser tests."""
    reason = missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests need Chromium in CI: {reason}")
        pytest.skip(f"no browser on this machine: {reason}")
    browser = chromium(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture
def service_token() -> str | None:
    """Override (or parametrize indirectly) to run the service with a token."""
    return None


@pytest.fixture
async def service(
    tmp_path: Path, mock_exchange: MockExchange, service_token: str | None
) -> AsyncIterator[Running]:
    """The whole service on SQLite against the mock, `SYMBOLS` on."""
    url = f"sqlite:///{tmp_path / 'streamer.db'}"
    async with running_service(url, mock_exchange, SYMBOLS, token=service_token) as running:
        yield running


@pytest.fixture
async def page(driver: WebDriver, service: Running) -> LivePage:
    """The status page of `service`, open with its first snapshot drawn."""
    return await LivePage(driver, service.base_url).open()
