"""The HTTP API of a running service: settings with live state, start/stop, health, metrics."""

from __future__ import annotations

import msgspec
import pytest

from streamer.db import Status
from tests.api.conftest import SYMBOLS, TOKEN, Running
from tests.binance.live import live
from tests.polling import eventually


async def test_settings_list_every_symbol_with_its_live_state(running: Running) -> None:
    """`GET /api/settings` returns every setting, stopped and off on a fresh database."""
    response = await running.http.get("/api/settings")

    assert response.status_code == 200
    states = {item["symbol"]: (item["status"], item["state"]) for item in response.json()}
    assert states == dict.fromkeys(("ADAUSDT", "BTCUSDT", "ETHUSDT", "NEOUSDT"), ("off", "stopped"))


async def test_start_makes_the_symbol_stream_and_persists_on(running: Running) -> None:
    """`POST /api/settings/ethusdt/start` starts a worker that receives trades, and saves `on`."""
    response = await running.http.post("/api/settings/ethusdt/start")

    assert response.status_code == 200
    assert response.json() == {"symbol": "ETHUSDT", "already_running": False}
    assert (await running.service.repository.get("ETHUSDT")).status is Status.ON

    await eventually(lambda: live(running.service.hub, "ETHUSDT").trades > 0)
    state = (await running.http.get("/api/settings/ETHUSDT")).json()
    assert state["state"] == "streaming"
    assert state["trades"] > 0
    assert state["last_trade_id"] is not None


async def test_starting_twice_reports_the_running_worker(running: Running) -> None:
    """A second start answers `already_running` and keeps one worker."""
    await running.http.post("/api/settings/ETHUSDT/start")

    response = await running.http.post("/api/settings/ETHUSDT/start")

    assert response.json() == {"symbol": "ETHUSDT", "already_running": True}
    assert running.service.registry.names() == ["ETHUSDT"]


async def test_stop_terminates_the_worker_and_persists_off(running: Running) -> None:
    """`POST .../stop` on a streaming symbol stops its worker and saves `off`."""
    await running.http.post("/api/settings/ETHUSDT/start")

    response = await running.http.post("/api/settings/ETHUSDT/stop")

    assert response.json() == {"symbol": "ETHUSDT", "was_running": True}
    assert running.service.registry.names() == []
    assert (await running.service.repository.get("ETHUSDT")).status is Status.OFF


async def test_active_filter_shows_only_symbols_on_or_running(running: Running) -> None:
    """`?active=true` lists what is on or running, which is what `streamer status` shows."""
    await running.http.post("/api/settings/NEOUSDT/start")

    response = await running.http.get("/api/settings", params={"active": "true"})

    assert [item["symbol"] for item in response.json()] == ["NEOUSDT"]


async def test_unknown_symbol_is_404_with_a_clear_reason(running: Running) -> None:
    """Starting a symbol missing from the settings answers 404 naming it, and changes nothing."""
    response = await running.http.post("/api/settings/XRPUSDT/start")

    assert response.status_code == 404
    assert "XRPUSDT" in response.json()["detail"]
    assert running.service.registry.names() == []


async def test_malformed_symbol_is_422_with_a_clear_reason(running: Running) -> None:
    """A symbol that cannot be a Binance symbol answers 422 with the rule it broke."""
    response = await running.http.post("/api/settings/ETH$USDT/start")

    assert response.status_code == 422
    assert "ETH$USDT" in response.json()["detail"]


async def test_a_cross_origin_page_cannot_change_the_running_set(running: Running) -> None:
    """A browser request from another origin is refused, so a web page cannot start streams."""
    response = await running.http.post(
        "/api/settings/ETHUSDT/start", headers={"origin": "https://evil.example"}
    )

    assert response.status_code == 403
    assert running.service.registry.names() == []


async def test_health_reports_live_and_ready(running: Running) -> None:
    """`GET /api/health` answers 200 with live and ready once the tree is up."""
    response = await running.http.get("/api/health")

    assert response.status_code == 200
    assert response.json() == {
        "live": True,
        "ready": True,
        "database": True,
        "streaming": 0,
        "sinks": [],
        "journal": None,
    }


async def test_tree_shows_the_supervision_tree(running: Running) -> None:
    """`GET /api/tree` shows the root, the streaming supervisor and its two children."""
    await running.http.post("/api/settings/ETHUSDT/start")

    tree = (await running.http.get("/api/tree")).json()["tree"]

    assert tree["name"] == "streamer"
    ids = [child["id"] for child in tree["children"]]
    group = ["ownership"] if running.service.ownership is not None else []
    assert ids == ["database", "stream_hub", "streaming", "http", *group]
    streaming = tree["children"][2]["supervisor"]
    assert streaming["strategy"] == "rest_for_one"
    assert [child["id"] for child in streaming["children"]] == ["streamers", "autostart"]
    workers = streaming["children"][0]["supervisor"]["children"]
    assert [worker["name"] for worker in workers] == ["ETHUSDT"]


async def test_metrics_expose_per_symbol_counters(running: Running) -> None:
    """`GET /metrics` is Prometheus text with per-symbol trade counters."""
    await running.http.post("/api/settings/ETHUSDT/start")
    await eventually(lambda: live(running.service.hub, "ETHUSDT").trades > 0)

    response = await running.http.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'streamer_trades_total{symbol="ETHUSDT"}' in response.text
    assert "streamer_symbols_running 1.0" in response.text


async def test_a_trade_with_an_impossible_time_is_counted_and_the_status_still_answers(
    running: Running,
) -> None:
    """A next-id trade timed 3e17 is rejected: status answers 200 and metrics count it."""
    await running.http.post("/api/settings/ETHUSDT/start")
    hub = running.service.hub
    await eventually(lambda: live(hub, "ETHUSDT").trades > 0)
    channel = hub.channel("ETHUSDT")
    assert channel is not None
    last = channel.last
    assert last is not None
    assert channel.last_id is not None
    channel.on_trade(
        msgspec.structs.replace(
            last, trade_id=channel.last_id + 1, trade_time=300_000_000_000_000_000
        )
    )
    channel.flush()

    status = await running.http.get("/api/settings/ETHUSDT")
    metrics = (await running.http.get("/metrics")).text

    assert status.status_code == 200
    assert status.json()["rejected"] == {"time_range": 1}
    assert 'streamer_rejected_total{reason="time_range",symbol="ETHUSDT"} 1.0' in metrics
    assert 'streamer_symbols_in_state{state="streaming"} 1.0' in metrics


async def test_openapi_schema_is_published(running: Running) -> None:
    """The OpenAPI schema lists the control endpoints."""
    schema = (await running.http.get("/openapi.json")).json()

    assert {"/api/settings", "/api/settings/{symbol}/start", "/api/health"} <= set(schema["paths"])


async def test_the_status_page_is_served(running: Running) -> None:
    """`GET /` serves the live status page."""
    response = await running.http.get("/")

    assert response.status_code == 200
    assert "<title>streamer</title>" in response.text


class TestWithToken:
    @pytest.fixture
    def service_token(self) -> str | None:
        return TOKEN

    async def test_mutations_without_the_token_are_refused(self, running: Running) -> None:
        """With a token configured, a start without `Authorization: Bearer` answers 401."""
        response = await running.http.post("/api/settings/ETHUSDT/start")

        assert response.status_code == 401
        assert running.service.registry.names() == []

    async def test_mutations_with_the_token_are_accepted(self, running: Running) -> None:
        """With the right bearer token, a start goes through."""
        response = await running.http.post(
            "/api/settings/ETHUSDT/start", headers={"authorization": f"Bearer {TOKEN}"}
        )

        assert response.status_code == 200

    async def test_reads_need_no_token(self, running: Running) -> None:
        """Reading the settings stays open: only mutations are guarded."""
        response = await running.http.get("/api/settings")

        assert response.status_code == 200

    async def test_a_token_keeps_the_host_check(self, running: Running) -> None:
        """With a token set, a rebound Host name is still refused, even with the token."""
        response = await running.http.get(
            "/api/settings",
            headers={"host": "attacker.example:8000", "authorization": f"Bearer {TOKEN}"},
        )

        assert response.status_code == 400

    async def test_a_symbol_path_takes_the_forms_users_type(self, running: Running) -> None:
        """`/api/settings/eth-usdt` is ETHUSDT; a URL-encoded long s is another, unknown, name."""
        assert (await running.http.get("/api/settings/eth-usdt")).json()["symbol"] == "ETHUSDT"
        long_s = await running.http.get("/api/settings/ETHU%C5%BFDT")
        assert long_s.status_code == 404


async def test_a_rebound_host_name_is_refused_without_a_token(running: Running) -> None:
    """A request whose Host is not a loopback name (DNS rebinding) is refused before routing."""
    response = await running.http.post(
        "/api/settings/ETHUSDT/start", headers={"host": "attacker.example:8000"}
    )

    assert response.status_code == 400
    assert running.service.registry.names() == []


async def test_many_symbols_start_and_stop_in_one_call(running: Running) -> None:
    """`POST /api/settings/start` with a JSON list starts them all and says which were running;
    `POST /api/settings/stop` stops them all."""
    await running.http.post("/api/settings/ETHUSDT/start")

    response = await running.http.post(
        "/api/settings/start", json=["ethusdt", "ADAUSDT", "BTCUSDT"]
    )

    assert response.status_code == 200
    assert response.json() == {
        "changed": ["ADAUSDT", "BTCUSDT"],
        "unchanged": ["ETHUSDT"],
        "failed": {},
    }
    assert sorted(running.service.registry.names()) == ["ADAUSDT", "BTCUSDT", "ETHUSDT"]
    stopped = await running.http.post("/api/settings/stop", json=["ADAUSDT", "NEOUSDT"])
    assert stopped.json() == {"changed": ["ADAUSDT"], "unchanged": ["NEOUSDT"], "failed": {}}
    assert sorted(running.service.registry.names()) == ["BTCUSDT", "ETHUSDT"]


async def test_one_unknown_symbol_fails_a_bulk_start_before_anything_changes(
    running: Running,
) -> None:
    """A list with an unknown symbol is refused with 404 naming it, and starts nothing."""
    response = await running.http.post("/api/settings/start", json=["ETHUSDT", "NOSUCHCOIN"])

    assert response.status_code == 404
    assert "NOSUCHCOIN" in response.json()["detail"]
    assert running.service.registry.names() == []
    assert (await running.service.repository.get("ETHUSDT")).status is Status.OFF


async def test_cluster_lists_this_instance_and_settings_name_the_owner(running: Running) -> None:
    """`GET /api/cluster` lists this instance, its address and what it streams; on PostgreSQL
    the settings rows name it as the owner of its symbols (SQLite has no leases: no owner)."""
    await running.http.post("/api/settings/ETHUSDT/start")
    me = running.service.instance_id

    instances = (await running.http.get("/api/cluster")).json()["instances"]

    assert [(i["id"], i["address"], i["symbols"]) for i in instances] == [
        (me, running.base_url.removeprefix("http://"), ["ETHUSDT"])
    ]
    rows = (await running.http.get("/api/settings")).json()
    owner = me if running.service.ownership is not None else None
    assert {row["symbol"]: row["owner"] for row in rows} == {
        symbol: owner if symbol == "ETHUSDT" else None for symbol in SYMBOLS
    }
