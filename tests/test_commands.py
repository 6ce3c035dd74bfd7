"""`streamer start|stop|status|run` as a user types them, with no service running.

With nothing answering at the API's address, start and stop change the database for the next
`streamer run` and say so; status reads the database. (Against a running service these commands
are exercised end to end in tests/e2e.)
"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamer.cli import app
from streamer.commands import report_changes
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
    code, _, err = invoke("start", "ETH$USDT", *offline(seeded))

    assert code == 2
    assert "invalid symbol 'ETH$USDT'" in err
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


def test_start_all_with_a_quote_filter_saves_only_those(database_url: str) -> None:
    """`streamer start --quote USDT` switches on every USDT symbol and no other."""
    asyncio.run(seed_database(database_url, [*SYMBOLS, "ETHBTC"]))

    code, out, _ = invoke("start", "--quote", "usdt", *offline(database_url))

    assert code == 0, out
    assert statuses(database_url) == {
        "ETHUSDT": "on",
        "NEOUSDT": "on",
        "BTCUSDT": "on",
        "ETHBTC": "off",
    }


def test_stop_all_switches_every_symbol_off(seeded: str) -> None:
    """`streamer stop --all` sets every symbol that was on to off."""
    invoke("start", "--all", *offline(seeded))
    assert set(statuses(seeded).values()) == {Status.ON}

    code, out, _ = invoke("stop", "--all", *offline(seeded))

    assert code == 0, out
    assert set(statuses(seeded).values()) == {Status.OFF}


def test_symbols_come_from_a_file_with_comments(seeded: str, tmp_path: Path) -> None:
    """`--from-file` reads symbols spaced, comma-separated or one per line, skipping comments."""
    listed = tmp_path / "symbols.txt"
    listed.write_text("# my watch list\nethusdt, neousdt  # two\n\n")

    code, out, _ = invoke("start", "--from-file", str(listed), *offline(seeded))

    assert code == 0, out
    assert statuses(seeded) == {"ETHUSDT": "on", "NEOUSDT": "on", "BTCUSDT": "off"}


def test_start_without_symbols_is_a_usage_error(seeded: str) -> None:
    """`streamer start` with nothing to start says how to name symbols and exits 2."""
    code, _, err = invoke("start", *offline(seeded))

    assert code == 2
    assert "--all" in err


def test_a_port_in_use_is_one_error_line(database_url: str) -> None:
    """`streamer run` on a port another program holds exits 1 with one `error:` line."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code, _, err = invoke("run", "--database-url", database_url, "--port", str(port))

    assert code == 1
    assert err.splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use: another program "
        "uses it; choose another with --port"
    ]


def test_run_refuses_a_sink_url_it_cannot_use(database_url: str) -> None:
    """`streamer run --sink kafka://...` exits 2 naming the schemes it knows, before starting."""
    code, _, err = invoke("run", "--sink", "kafka://127.0.0.1:9092", "--database-url", database_url)

    assert code == 2
    assert "nats://, parquet://, redis://" in err


def test_run_on_a_file_that_is_not_a_database_is_one_error_line(tmp_path: Path) -> None:
    """`streamer run` on an SQLite file of something else says so in one line and exits 1."""
    corrupt = tmp_path / "streamer.db"
    corrupt.write_bytes(b"\x00garbage" * 1000)

    code, _, err = invoke("run", "--database-url", f"sqlite:///{corrupt}", "--port", "0")

    assert code == 1
    assert err.strip().splitlines() == [
        f"error: SQLite file {corrupt} is not an SQLite database (file is not a database): "
        "move it away or point STREAMER_DATABASE_URL at another file"
    ]


def test_start_takes_the_forms_users_type_and_unicode_names(database_url: str) -> None:
    """`start eth/usdt 这是测试币456` switches on ETHUSDT and the Unicode symbol, as listed."""
    asyncio.run(seed_database(database_url, [*SYMBOLS, "这是测试币456"]))

    code, out, err = invoke("start", "eth/usdt", "这是测试币456", *offline(database_url))

    assert code == 0, err
    assert "ETHUSDT, 这是测试币456" in out
    assert statuses(database_url)["这是测试币456"] == "on"
    assert statuses(database_url)["ETHUSDT"] == "on"


def test_many_symbols_are_reported_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """A start or stop of more than ten symbols prints one summary line, plus any failure."""
    wanted = [f"COIN{n}USDT" for n in range(12)]
    result = {"changed": wanted[:10], "unchanged": wanted[10:11], "failed": {wanted[11]: "boom"}}

    report_changes(result, wanted, Status.OFF)

    assert capsys.readouterr().out.splitlines() == [
        "12 symbols: 10 stopped, 1 not running, 1 failed",
        "COIN11USDT: failed: boom",
    ]
