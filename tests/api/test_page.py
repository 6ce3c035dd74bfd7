"""The page at `/` and its assets come from the service itself: nothing from another host."""

from __future__ import annotations

import re

from streamer.api.page import STATIC_DIR
from tests.api.conftest import Running

ASSET = re.compile(r'(?:src|href)="([^"]+)"')


async def test_the_page_loads_only_its_own_assets(running: Running) -> None:
    """Every script and stylesheet of the page is a local path that the service serves."""
    page = await running.http.get("/")
    assert page.status_code == 200
    assets = ASSET.findall(page.text)
    assert "/static/live.js" in assets
    assert "/static/vendor/uplot/uPlot.iife.min.js" in assets
    for asset in assets:
        assert asset.startswith("/static/"), asset
        served = await running.http.get(asset)
        assert served.status_code == 200, asset
        assert served.content == (STATIC_DIR / asset.removeprefix("/static/")).read_bytes()


def test_the_script_talks_only_to_the_service() -> None:
    """The page's script opens its feed and API calls on its own host, never an absolute URL."""
    script = (STATIC_DIR / "live.js").read_text()
    assert "http://" not in script
    assert "https://" not in script
    assert "${location.host}/ws/live" in script


def test_the_chart_library_ships_with_its_licence() -> None:
    """The vendored uPlot keeps its MIT licence beside it."""
    licence = (STATIC_DIR / "vendor" / "uplot" / "LICENSE").read_text()
    assert "MIT License" in licence
    assert "uPlot" in (STATIC_DIR / "vendor" / "uplot" / "uPlot.iife.min.js").read_text()[:200]
