"""The server: REST, websocket streams and the admin endpoint share one port."""

from __future__ import annotations

import json

import httpx
from websockets.asyncio.client import connect

from streamer.mock_exchange import MockExchange


async def test_rest_and_websocket_share_one_port(mock_exchange: MockExchange) -> None:
    """A REST call and a websocket stream are both served on the mock's single port."""
    async with httpx.AsyncClient(base_url=mock_exchange.rest_url) as client:
        response = await client.get("/api/v3/ping")
    assert response.status_code == 200
    assert response.json() == {}
    async with connect(f"{mock_exchange.ws_url}/ws/btcusdt@trade") as ws:
        event = json.loads(await ws.recv())
    assert event["e"] == "trade"
    assert event["s"] == "BTCUSDT"
