"""`/docs` works without the internet: the page and its assets come from the service itself."""

from __future__ import annotations

import re

from tests.api.conftest import Running


async def test_the_docs_page_loads_only_local_assets(running: Running) -> None:
    """Every script, stylesheet and icon of `/docs` is served by the service, none from a CDN."""
    page = await running.http.get("/docs")

    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page.text)
    assert urls
    assert all(url.startswith("/docs/assets/") for url in urls), urls
    assert "'/openapi.json'" in page.text or '"/openapi.json"' in page.text
    for url in urls:
        asset = await running.http.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url
