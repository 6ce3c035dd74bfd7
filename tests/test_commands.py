"""`streamer start|stop|status|run` as a user types them, with no service running.

With nothing answering at the API's address, start and stop change the database for the next
`streamer run` and say so; status reads the database. (Against a running service these commands
are exercised end to end in tests/e2e.)
"""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

from streamer.cli import app
from streamer.db import SettingsRepository, Status, create_engine
from tests.fixtures.database import seed_database
from tests.ports import closed_port

SYMBOLS = ["ETHUSDT", "NEOUSDT", "BTCUSDT"]


@pytest.fixture
def seeded(database_url: str) -> str:
    asyncio.run(seed_database(database_url, SYMBOLS))
    return database_url


def statuses(database_url: str) -> dict[str, Status]:
    async def read() -> dict[str, Status]:
        engine = create_engine(database_url)
        try:
            return {s.symbol: s.status for s in await SettingsRepository(engine).list()}
        finally:
            await engine.dispose()

    return asyncio.run(read())


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def offline(database_url: str) -> list[str]:
    return ["--database-url", database_url, "--port", str(closed_port())]


def test_start_without_a_service_saves_on_for_the_next_run(seeded: str) -> None:
    """`streamer start ethusdt neousdt` with no service sets both on and says it did so offline."""
    code, out, _ = invoke("start", "ethusdt", "neousdt", *offline(seeded))

    assert code == 0
    assert "saved ETHUSDT, NEOUSDT as on" in out
    assert "next `streamer run`" in out
    assert statuses(seeded) == {"ETHUSDT": "on", "NEOUSDT": "on", "BTCUSDT": "off"}


def test_stop_without_a_service_saves_off(seeded: str) -> None:
    """`streamer stop` with no service sets the symbol off."""
    invoke("start", "ETHUSDT", *offline(seeded))

    code, out, _ = invoke("stop", "ETHUSDT", *offline(seeded))

    assert code == 0
    assert "saved ETHUSDT as off" in out
    assert statuses(seeded)["ETHUSDT"] is Status.OFF


def test_an_unknown_symbol_changes_nothing_and_says_why(seeded: str) -> None:
    """One unknown symbol among good ones fails the command before any status changes."""
    code, _, err = invoke("start", "ETHUSDT", "XRPUSDT", *offline(seeded))

    assert code == 1
    assert "XRPUSDT" in err
    assert len(err.strip().splitlines()) == 1
    assert set(statuses(seeded).values()) == {Status.OFF}


def test_a_malformed_symbol_is_a_usage_error(seeded: str) -> None:
    """A symbol that cannot exist exits 2 with the rule it broke, changing nothing."""
    code, _, err = invoke("start", "ETH-USDT", *offline(seeded))

    assert code == 2
    assert "invalid symbol 'ETH-USDT'" in err
    assert set(statuses(seeded).values()) == {Status.OFF}


def test_status_json_lists_the_symbols_that_are_on(seeded: str) -> None:
    """`status --json` without a service lists symbols that are on, as stopped."""
    invoke("start", "NEOUSDT", *offline(seeded))

    code, out, _ = invoke("status", "--json", *offline(seeded))

    assert code == 0
    assert json.loads(out) == [
        {"symbol": "NEOUSDT", "owner": None, "status": "on", "state": "stopped", "restarts": 0}
    ]


def test_status_all_includes_symbols_that_are_off(seeded: str) -> None:
    """`status --all --json` lists every setting."""
    code, out, _ = invoke("status", "--all", "--json", *offline(seeded))

    assert code == 0
    assert sorted(item["symbol"] for item in json.loads(out)) == sorted(SYMBOLS)


def test_status_on_a_database_without_schema_names_the_command_to_run(database_url: str) -> None:
    """A database never upgraded gives one line naming `streamer db upgrade`."""
    code, _, err = invoke("status", *offline(database_url))

    assert code == 1
    assert "streamer db upgrade" in err


def test_run_refuses_to_serve_beyond_loopback_without_a_token(database_url: str) -> None:
    """`streamer run --host 0.0.0.0` with no token exits 2 explaining how to fix it."""
    code, _, err = invoke("run", "--host", "0.0.0.0", "--database-url", database_url)

    assert code == 2
    assert "STREAMER_TOKEN" in err
