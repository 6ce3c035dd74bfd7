"""The live status page at `/`: static files shipped inside the package, nothing from a CDN.

The page (`static/index.html`, `live.js`, `live.css`) and its chart library (uPlot, vendored
under `static/vendor/uplot` with its licence) are served by the service itself, so the page
works on a machine without internet access. Its data comes over `/ws/live` (`api.live`).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).with_name("static")


def mount_page(app: FastAPI) -> None:
    """Serve the page at `/` and its assets under `/static/`."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def status_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"cache-control": "no-cache"})
