"""Debian's headless Chromium driven by selenium through Debian's chromedriver.

Used by the browser tests and by `make screenshots`. The flags keep the browser from reaching
anything but the page under test (no sync, no component updates, no QUIC, no first-run pages),
and every browser gets a fresh profile directory, so no state leaks from one run to the next.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)
INSTALL_HINT = "apt-get install chromium chromium-driver"


def missing() -> str | None:
    """Why a browser cannot be started here, or None when it can."""
    absent = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    if absent:
        return f"{' and '.join(absent)} not found on PATH ({INSTALL_HINT})"
    return None


def chromium(profile: Path, width: int = 1400, height: int = 900) -> webdriver.Chrome:
    """A headless Chromium with a fresh profile in `profile`, its window `width` x `height`."""
    reason = missing()
    if reason is not None:
        raise RuntimeError(reason)
    options = Options()
    options.binary_location = str(shutil.which("chromium"))
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    service = Service(executable_path=str(shutil.which("chromedriver")))
    return webdriver.Chrome(options=options, service=service)
