"""`streamer db upgrade|current` and `streamer seed`, as a user runs them.

Every bad input must end in one `error:` line, a non-zero exit and an unchanged database.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result

from streamer.cli import app
from streamer.db import SettingsRepository, Status, create_engine, current, head, upgrade
from streamer.db.cli import seed_progress
from tests.fixtures.database import TEST_DATABASE_ENV

RECORDED = (
    Path(__file__).resolve().parents[3]
    / "shared/data/exchange_info/binance-spot-exchangeInfo-2021-10-12.json"
)


def exchange_info(*symbols: str) -> str:
    """An exchangeInfo body listing `symbols` (only the fields the seed reads, plus context)."""
    entries = [
        {"symbol": s, "status": "TRADING", "baseAsset": s[:3], "quoteAsset": s[3:]} for s in symbols
    ]
    return json.dumps({"timezone": "UTC", "serverTime": 1633998511098, "symbols": entries})


SMALL_INFO = exchange_info("ETHUSDT", "BTCUSDT", "BNBBTC")

State = dict[str, Status] | None


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def assert_one_line_error(result: Result, *fragments: str) -> None:
    assert result.exit_code != 0, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.output


def state(url: str) -> State:
    """Every symbol and its status, or None when the database has no schema: what must not move."""

    async def read() -> State:
        if await current(url) is None:
            return None
        engine = create_engine(url)
        try:
            return {s.symbol: s.status for s in await SettingsRepository(engine).list()}
        finally:
            await engine.dispose()

    return asyncio.run(read())


def set_on(url: str, symbol: str) -> None:
    async def change() -> None:
        engine = create_engine(url)
        try:
            await SettingsRepository(engine).set_status(symbol, Status.ON)
        finally:
            await engine.dispose()

    asyncio.run(change())


@pytest.fixture
def info_file(tmp_path: Path) -> Path:
    path = tmp_path / "exchangeInfo.json"
    path.write_text(SMALL_INFO)
    return path


@pytest.fixture
def seeded_url(database_url: str, info_file: Path) -> str:
    """A database seeded with three symbols, ETHUSDT switched on."""
    assert (
        invoke("seed", "--database-url", database_url, "--from-file", str(info_file)).exit_code == 0
    )
    set_on(database_url, "ETHUSDT")
    return database_url


class FakeExchange:
    """A tiny HTTP server on 127.0.0.1 answering exchangeInfo with a fixed status and body."""

    def __init__(self, status: int, body: bytes) -> None:
        outer = self
        self.status, self.body, self.paths = status, body, list[str]()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.paths.append(self.path)
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeExchange:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def exchange() -> Iterator[FakeExchange]:
    with FakeExchange(200, SMALL_INFO.encode()) as fake:
        yield fake


def test_current_then_upgrade_then_current(database_url: str) -> None:
    """`db current` says what to run, `db upgrade` reaches head, `db current` then agrees."""
    before = invoke("db", "current", "--database-url", database_url)
    assert before.exit_code == 0
    assert "no schema yet; run `streamer db upgrade --database-url" in before.stdout
    upgraded = invoke("db", "upgrade", "--database-url", database_url)
    assert upgraded.exit_code == 0, upgraded.output
    assert f"at revision {head()} (up to date)" in upgraded.stdout
    after = invoke("db", "current", "--database-url", database_url)
    assert after.stdout.strip().endswith(f"at revision {head()} (up to date)")


def test_default_database_is_created_in_the_user_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a URL, upgrade creates streamer.db (and its directory) in the data directory."""
    monkeypatch.delenv("STREAMER_DATABASE_URL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))
    assert "run `streamer db upgrade`" in invoke("db", "current").stdout
    result = invoke("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "data-home" / "streamer" / "streamer.db").is_file()


def test_seed_from_file_is_idempotent_and_keeps_statuses(seeded_url: str, info_file: Path) -> None:
    """A second seed adds none, reports them as already there, and keeps ETHUSDT on."""
    result = invoke("seed", "--database-url", seeded_url, "--from-file", str(info_file))
    assert result.exit_code == 0, result.output
    assert (
        result.stdout.strip()
        .splitlines()[-1]
        .endswith("0 new, 3 already there, 0 gone from the exchange (kept)")
    )
    assert state(seeded_url) == {"BNBBTC": Status.OFF, "BTCUSDT": Status.OFF, "ETHUSDT": Status.ON}


def test_seed_the_recorded_exchange(database_url: str) -> None:
    """The real recorded response seeds 1,695 symbols, all off, in one summary line."""
    if not RECORDED.exists():
        pytest.skip(f"recorded data not found at {RECORDED}")
    result = invoke("seed", "--database-url", database_url, "--from-file", str(RECORDED))
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n") == 1
    assert "1695 new, 0 already there, 0 gone from the exchange (kept)" in result.stdout
    seeded = state(database_url)
    assert seeded is not None
    assert len(seeded) == 1695
    assert set(seeded.values()) == {Status.OFF}


def test_one_unicode_symbol_does_not_fail_the_seed(database_url: str, tmp_path: Path) -> None:
    """An exchangeInfo listing a non-ASCII symbol seeds it beside the others, as listed."""
    listed = tmp_path / "unicode.json"
    listed.write_text(exchange_info("ETHUSDT", "这是测试币456"), encoding="utf-8")
    result = invoke("seed", "--database-url", database_url, "--from-file", str(listed))
    assert result.exit_code == 0, result.output
    assert "2 new" in result.stdout
    assert state(database_url) == dict.fromkeys(["ETHUSDT", "这是测试币456"], Status.OFF)


def test_seed_from_an_exchange_url(database_url: str, exchange: FakeExchange) -> None:
    """--exchange-url fetches /api/v3/exchangeInfo from that server and seeds its symbols."""
    result = invoke("seed", "--database-url", database_url, "--exchange-url", exchange.url)
    assert result.exit_code == 0, result.output
    assert exchange.paths == ["/api/v3/exchangeInfo"]
    assert "3 new, 0 already there" in result.stdout
    assert state(database_url) == dict.fromkeys(["BNBBTC", "BTCUSDT", "ETHUSDT"], Status.OFF)


def test_seed_reports_gone_symbols_and_keeps_them(seeded_url: str, tmp_path: Path) -> None:
    """A newer response without ETHUSDT adds the new symbol and names ETHUSDT as gone, kept on."""
    newer = exchange_info("BTCUSDT", "BNBBTC", "SOLUSDT")
    path = tmp_path / "newer.json"
    path.write_text(newer)
    result = invoke("seed", "--database-url", seeded_url, "--from-file", str(path))
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "gone from the exchange, kept as they are: ETHUSDT"
    assert lines[1].endswith("1 new, 2 already there, 1 gone from the exchange (kept)")
    after = state(seeded_url)
    assert after is not None
    assert after["ETHUSDT"] is Status.ON
    assert after["SOLUSDT"] is Status.OFF


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (SMALL_INFO[:-30], "truncated"),
        ('{"symbols": "none"}', "not a Binance exchangeInfo"),
        (exchange_info("ETHUSDT", "ETH USDT"), "malformed symbol"),
    ],
)
def test_bad_exchange_info_file_changes_nothing(
    seeded_url: str, tmp_path: Path, body: str, complaint: str
) -> None:
    """A truncated, foreign or malformed exchangeInfo is one error line and writes nothing."""
    before = state(seeded_url)
    path = tmp_path / "bad.json"
    path.write_text(body)
    result = invoke("seed", "--database-url", seeded_url, "--from-file", str(path))
    assert_one_line_error(result, complaint)
    assert state(seeded_url) == before


def test_missing_file_is_one_line(database_url: str, tmp_path: Path) -> None:
    """An unreadable --from-file is one error line, and no database is created."""
    result = invoke("seed", "--database-url", database_url, "--from-file", str(tmp_path / "no"))
    assert_one_line_error(result, "cannot read", "No such file")
    assert state(database_url) is None


@pytest.mark.parametrize("status", [451, 403])
def test_location_refusal_names_alternatives_and_changes_nothing(
    seeded_url: str, status: int
) -> None:
    """An exchange refusing this location gives one line naming the alternatives, no writes."""
    before = state(seeded_url)
    with FakeExchange(status, b'{"code": 0, "msg": "restricted location"}') as fake:
        result = invoke("seed", "--database-url", seeded_url, "--exchange-url", fake.url)
    assert_one_line_error(result, f"HTTP {status}", "data-api.binance.vision", "--from-file")
    assert state(seeded_url) == before


def test_truncated_body_from_exchange_changes_nothing(seeded_url: str) -> None:
    """A truncated exchangeInfo over HTTP is one error line and writes nothing."""
    before = state(seeded_url)
    with FakeExchange(200, SMALL_INFO.encode()[:50]) as fake:
        result = invoke("seed", "--database-url", seeded_url, "--exchange-url", fake.url)
    assert_one_line_error(result, "truncated")
    assert state(seeded_url) == before


def test_unreachable_database_names_host_and_port(info_file: Path) -> None:
    """Nothing listening at the PostgreSQL port: one line naming host:port, for every command."""
    url = "postgresql://postgres@127.0.0.1:1/streamer"
    for args in (
        ("db", "upgrade", "--database-url", url),
        ("db", "current", "--database-url", url),
        ("seed", "--database-url", url, "--from-file", str(info_file)),
    ):
        assert_one_line_error(invoke(*args), "cannot reach PostgreSQL at 127.0.0.1:1")


def test_wrong_credentials_are_one_line(info_file: Path) -> None:
    """A login the server refuses is one line naming the user, for upgrade and seed."""
    server = os.environ.get(TEST_DATABASE_ENV)
    if not server:
        pytest.skip(f"needs a PostgreSQL server in {TEST_DATABASE_ENV}")
    url = make_url(server).set(username="no_such_user_here").render_as_string(hide_password=False)
    for args in (
        ("db", "upgrade", "--database-url", url),
        ("seed", "--database-url", url, "--from-file", str(info_file)),
    ):
        assert_one_line_error(invoke(*args), "refused user 'no_such_user_here'")


@pytest.mark.parametrize("url", ["mysql://localhost/streamer", "not a url", "sqlite://"])
def test_unusable_database_url_is_one_line(url: str, info_file: Path) -> None:
    """A URL of another database, or no URL at all, is one error line before any work."""
    assert_one_line_error(invoke("db", "upgrade", "--database-url", url), url.split(":")[0])
    assert_one_line_error(invoke("seed", "--database-url", url, "--from-file", str(info_file)))


def test_file_and_exchange_url_together_is_a_usage_error(
    database_url: str, info_file: Path
) -> None:
    """--from-file and --exchange-url exclude each other: exit 2, nothing created."""
    result = invoke(
        "seed", "--database-url", database_url, "--from-file", str(info_file),
        "--exchange-url", "http://127.0.0.1:1",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "either --exchange-url or --from-file" in result.stderr
    assert state(database_url) is None


def test_outdated_schema_is_reported_by_current(database_url: str) -> None:
    """`db current` on a database stuck at base names the upgrade command."""
    asyncio.run(upgrade(database_url, "base"))
    result = invoke("db", "current", "--database-url", database_url)
    assert result.exit_code == 0
    assert "no schema yet; run `streamer db upgrade --database-url" in result.stdout


def test_progress_bar_only_on_a_terminal() -> None:
    """The seed's progress bar draws on a terminal and stays silent in a pipe."""
    piped, terminal = io.StringIO(), io.StringIO()
    for console in (Console(file=piped), Console(file=terminal, force_terminal=True)):
        with seed_progress(console) as progress:
            task = progress.add_task("seeding", total=10)
            progress.advance(task, 10)
            progress.refresh()
    assert piped.getvalue() == ""
    assert "10/10" in terminal.getvalue()
