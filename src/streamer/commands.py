"""The service's sub-commands: `run`, `start`, `stop`, `status`, `tail` and `demo`.

The web stack, the mock exchange and the websocket client are imported by the commands that use
them, so that `start`, `stop` and `status` answer without loading what they do not need.

`start`, `stop` and `status` go through the running service's API when one answers at the
configured address, and otherwise work on the database directly, for the next `run`. They say
which of the two they did, so nobody wonders why a symbol is not streaming yet.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from streamer.cli_support import DatabaseUrl, exit_on_errors, fail, settings_from
from streamer.client import ApiError, ServiceClient, ServiceNotRunning
from streamer.config import Settings
from streamer.db import DatabaseError, SettingsRepository, Status, create_engine
from streamer.logs import configure_logging
from streamer.symbols import InvalidSymbol, ascii_upper, normalize_symbol, url_quote

Host = Annotated[
    str | None, typer.Option("--host", help="API address (env STREAMER_HOST)", show_default=False)
]
Port = Annotated[
    int | None,
    typer.Option(
        "--port", min=0, max=65535, help="API port (env STREAMER_PORT)", show_default=False
    ),
]
Token = Annotated[
    str | None,
    typer.Option("--token", help="API bearer token (env STREAMER_TOKEN)", show_default=False),
]


def api_url(settings: Settings) -> str:
    if settings.port == 0:
        raise fail("port 0 names no running service: give the API's port (--port)", 2)
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    return f"http://{host}:{settings.port}"


def client_for(settings: Settings) -> ServiceClient:
    token = settings.token.get_secret_value() if settings.token else None
    return ServiceClient(api_url(settings), token)


def normalized(symbols: list[str]) -> list[str]:
    """Every symbol normalised, or one error naming the first bad one before anything changes."""
    try:
        return list(dict.fromkeys(normalize_symbol(symbol) for symbol in symbols))
    except InvalidSymbol as error:
        raise fail(str(error), 2) from None


SHOWN_ONE_BY_ONE = 10
"""Up to this many symbols, a start or stop prints a line per symbol; beyond, one summary."""


def read_symbol_file(path: Path) -> list[str]:
    """Symbols from a file (`-` is stdin): separated by spaces, commas or lines; `#` comments."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text()
    except OSError as error:
        raise fail(f"cannot read symbols from {path}: {error.strerror}", 2) from None
    lines = (line.split("#", 1)[0] for line in text.splitlines())
    return [word for line in lines for word in line.replace(",", " ").split()]


def with_quote(symbols: list[str], quote: str | None) -> list[str]:
    """The symbols quoted in `quote` (their name ends with it), or all when no quote is given."""
    if quote is None:
        return symbols
    suffix = ascii_upper(quote.strip())
    return [s for s in symbols if s.endswith(suffix) and len(s) > len(suffix)]


@dataclass(frozen=True)
class Selection:
    """What a start or stop applies to: named symbols, plus every known one with `every`."""

    named: list[str]
    every: bool
    quote: str | None

    def resolve(self, known: list[str]) -> list[str]:
        chosen = [*self.named, *(known if self.every else [])]
        wanted = with_quote(list(dict.fromkeys(chosen)), self.quote)
        if not wanted:
            raise fail("no symbols to change" + (f" quoted in {self.quote}" if self.quote else ""))
        return wanted


async def _set_offline(database_url: str, selection: Selection, status: Status) -> list[str]:
    engine = create_engine(database_url)
    try:
        repository = SettingsRepository(engine)
        await repository.check_schema()
        every = None if status is Status.ON else Status.ON
        known = (
            [row.symbol for row in await repository.list(status=every)] if selection.every else []
        )
        wanted = selection.resolve(known)
        for symbol in wanted:
            await repository.get(symbol)
        for symbol in wanted:
            await repository.set_status(symbol, status)
        return wanted
    finally:
        await engine.dispose()


def report_changes(result: dict[str, Any], wanted: list[str], status: Status) -> None:
    changed_word, unchanged_word = (
        ("started", "already streaming") if status is Status.ON else ("stopped", "was not running")
    )
    notes = dict.fromkeys(result["changed"], changed_word)
    notes.update(dict.fromkeys(result["unchanged"], unchanged_word))
    notes.update({symbol: f"failed: {why}" for symbol, why in result["failed"].items()})
    if len(wanted) <= SHOWN_ONE_BY_ONE:
        for symbol in wanted:
            typer.echo(f"{symbol}: {notes[symbol]}")
        return
    summary = f"{len(wanted)} symbols: {len(result['changed'])} {changed_word}, "
    summary += f"{len(result['unchanged'])} {unchanged_word.removeprefix('was ')}"
    typer.echo(summary + (f", {len(result['failed'])} failed" if result["failed"] else ""))
    for symbol, why in result["failed"].items():
        typer.echo(f"{symbol}: failed: {why}")


def _change(selection: Selection, status: Status, settings: Settings) -> None:
    try:
        with client_for(settings) as client:
            known = []
            if selection.every:
                known = [s["symbol"] for s in client.settings(active=status is Status.OFF)]
            wanted = selection.resolve(known)
            verb = client.start_many if status is Status.ON else client.stop_many
            report_changes(verb(wanted), wanted, status)
            return
    except ServiceNotRunning:
        pass
    except ApiError as error:
        raise fail(str(error)) from None
    with exit_on_errors():
        wanted = asyncio.run(_set_offline(settings.resolved_database_url(), selection, status))
    when = "streams" if status is Status.ON else "stays stopped"
    shown = ", ".join(wanted) if len(wanted) <= SHOWN_ONE_BY_ONE else f"{len(wanted)} symbols"
    typer.echo(
        f"no service answers at {api_url(settings)}: saved {shown} as {status}; "
        f"it {when} from the next `streamer run`"
    )


def _change_command(status: Status, summary: str) -> Callable[..., None]:
    def command(
        symbols: Annotated[
            list[str] | None,
            typer.Argument(help="Symbols, e.g. ETHUSDT btcusdt", show_default=False),
        ] = None,
        every: Annotated[
            bool,
            typer.Option(
                "--all", help="Every symbol in the settings (stop: every one that is on)."
            ),
        ] = False,
        from_file: Annotated[
            Path | None,
            typer.Option(
                "--from-file", help="Symbols from a file ('-' for stdin), one per line or spaced."
            ),
        ] = None,
        quote: Annotated[
            str | None,
            typer.Option(
                "--quote",
                help="Only symbols quoted in this asset, e.g. USDT (alone: implies --all).",
            ),
        ] = None,
        database_url: DatabaseUrl = None,
        host: Host = None,
        port: Port = None,
        token: Token = None,
    ) -> None:
        settings = settings_from(database_url=database_url, host=host, port=port, token=token)
        named = [*(symbols or []), *(read_symbol_file(from_file) if from_file else [])]
        every = every or (quote is not None and not named)
        if not named and not every:
            raise fail("name the symbols, or use --all, --from-file or --quote", 2)
        _change(Selection(normalized(named), every, quote), status, settings)

    command.__doc__ = summary
    return command


start_command = _change_command(
    Status.ON, "Start streaming symbols now, and on every start of the service."
)
stop_command = _change_command(Status.OFF, "Stop streaming symbols, now and on later starts.")


async def _offline_states(database_url: str, include_off: bool) -> list[dict[str, Any]]:
    engine = create_engine(database_url)
    try:
        repository = SettingsRepository(engine)
        await repository.check_schema()
        rows = await repository.list(status=None if include_off else Status.ON)
    finally:
        await engine.dispose()
    return [
        {
            "symbol": row.symbol,
            "owner": None,
            "status": str(row.status),
            "state": "stopped",
            "restarts": 0,
        }
        for row in rows
    ]


def status_command(
    all_symbols: Annotated[
        bool, typer.Option("--all", help="Include symbols that are off and not running.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
    database_url: DatabaseUrl = None,
    host: Host = None,
    port: Port = None,
) -> None:
    """Which symbols stream: persisted status, live state, rate and restarts."""
    settings = settings_from(database_url=database_url, host=host, port=port)
    source: str
    try:
        with client_for(settings) as client:
            states = client.settings(active=not all_symbols)
            source = f"service at {api_url(settings)}"
    except ServiceNotRunning:
        with exit_on_errors():
            states = asyncio.run(_offline_states(settings.resolved_database_url(), all_symbols))
        source = "database (no service is running)"
    except ApiError as error:
        raise fail(str(error)) from None
    if as_json:
        typer.echo(json.dumps(states, indent=2))
        return
    table = Table(title=f"streamer status, from the {source}", title_justify="left")
    for column in ("symbol", "owner", "status", "state", "since", "trades/s", "restarts", "gaps"):
        table.add_column(
            column, justify="left" if column in ("symbol", "owner", "state") else "right"
        )
    for state in states:
        table.add_row(
            state["symbol"],
            state.get("owner") or "-",
            state["status"],
            state["state"],
            (state.get("since") or "")[11:19],
            f"{state.get('rate', 0.0):.1f}",
            str(state.get("restarts", 0)),
            f"{state.get('gaps_filled', 0)} filled, {state.get('gaps_lost', 0)} lost",
        )
    Console().print(table)


WsUrl = Annotated[
    str | None,
    typer.Option("--ws-url", help="Binance websocket base URL (env STREAMER_WS_URL)"),
]
RestUrl = Annotated[
    str | None,
    typer.Option("--rest-url", help="Binance REST base URL (env STREAMER_REST_URL)"),
]
LogLevel = Annotated[
    str | None,
    typer.Option("--log-level", help="DEBUG, INFO, WARNING (env STREAMER_LOG_LEVEL)"),
]


def run_command(
    database_url: DatabaseUrl = None,
    ws_url: WsUrl = None,
    rest_url: RestUrl = None,
    host: Host = None,
    port: Port = None,
    token: Token = None,
    log_level: LogLevel = None,
    log_format: Annotated[
        str | None,
        typer.Option(
            "--log-format", help="text or json, one object a line (env STREAMER_LOG_FORMAT)"
        ),
    ] = None,
    sinks: Annotated[
        list[str] | None,
        typer.Option(
            "--sink",
            help="Publish every event to this broker too: nats://host:4222, "
            "redis://host:6379/0 or parquet:///dir (repeatable; env STREAMER_SINKS, "
            "comma-separated)",
            show_default=False,
        ),
    ] = None,
    sink_required: Annotated[
        bool | None,
        typer.Option(
            "--sink-required/--sink-optional",
            help="Ready only while every sink's broker answers (env STREAMER_SINK_REQUIRED)",
            show_default=False,
        ),
    ] = None,
    journal_dir: Annotated[
        Path | None,
        typer.Option(
            "--journal-dir",
            help="Where the journal the sinks read lives (env STREAMER_JOURNAL_DIR; default "
            "beside the SQLite database, else <data dir>/journal/<instance id>)",
            show_default=False,
        ),
    ] = None,
    journal_max_bytes: Annotated[
        str | None,
        typer.Option(
            "--journal-max-bytes",
            help="The journal's disk budget, e.g. 1GiB or 500MB; past it a lagging sink's "
            "oldest trades are dropped and re-fetched (env STREAMER_JOURNAL_MAX_BYTES)",
            show_default=False,
        ),
    ] = None,
    instance_id: Annotated[
        str | None,
        typer.Option(
            "--instance-id",
            help="This instance's name in a group (env STREAMER_INSTANCE_ID; default host-pid)",
        ),
    ] = None,
    lease_ttl: Annotated[
        float | None,
        typer.Option("--lease-ttl", help="Seconds a symbol's lease lasts (env STREAMER_LEASE_TTL)"),
    ] = None,
    lease_renew: Annotated[
        float | None,
        typer.Option(
            "--lease-renew", help="Seconds between lease renewals (env STREAMER_LEASE_RENEW)"
        ),
    ] = None,
) -> None:
    """Run the service: migrate the database, autostart the enabled symbols, serve the API."""
    from streamer.api.security import TokenRequired
    from streamer.api.server import bind
    from streamer.journal import JournalError
    from streamer.ownership import InstanceLocked, InvalidLeaseTimes
    from streamer.service import Service
    from streamer.sinks import SinkError

    settings = settings_from(
        database_url=database_url,
        ws_url=ws_url,
        rest_url=rest_url,
        host=host,
        port=port,
        token=token,
        log_level=log_level,
        log_format=log_format,
        sinks=sinks or None,
        sink_required=sink_required,
        journal_dir=journal_dir,
        journal_max_bytes=journal_max_bytes,
        instance_id=instance_id,
        lease_ttl=lease_ttl,
        lease_renew=lease_renew,
    )
    configure_logging(settings.log_level, settings.log_format)
    try:
        service = Service(settings)
    except (TokenRequired, SinkError, InvalidLeaseTimes) as error:
        raise fail(str(error), 2) from None
    except DatabaseError as error:
        raise fail(str(error)) from None
    try:
        bind(settings.host, settings.port).close()
    except OSError as error:
        raise fail(f"{error}: another program uses it; choose another with --port") from None
    try:
        code = asyncio.run(service.run())
    except (InstanceLocked, DatabaseError, JournalError) as error:
        raise fail(str(error)) from None
    raise typer.Exit(code)


def tail_command(
    symbols: Annotated[
        list[str] | None, typer.Argument(help="Symbols to follow; none follows every symbol.")
    ] = None,
    host: Host = None,
    port: Port = None,
    sink: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Read a sink back instead of the service: nats://host:4222 or "
            "redis://host:6379/0 (with the sink's own stream/prefix parameters)",
            show_default=False,
        ),
    ] = None,
    since_id: Annotated[
        int | None,
        typer.Option("--since-id", help="With --from: replay from this trade id", min=0),
    ] = None,
    since: Annotated[
        datetime | None,
        typer.Option("--since", help="With --from: replay from this time (UTC unless given)"),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", help="Stop after this many events", min=1)
    ] = None,
) -> None:
    """Print live trades from the running service (or a sink), one line each, until Ctrl-C."""
    from streamer.tail import TailError, follow, print_event

    settings = settings_from(host=host, port=port)
    wanted = normalized(symbols or [])
    if sink is not None:
        _tail_sink(sink, wanted, since_id, since, limit)
        return
    url = api_url(settings).replace("http://", "ws://", 1) + "/ws/trades"
    if wanted:
        url += "?symbols=" + ",".join(url_quote(symbol) for symbol in wanted)
    try:
        asyncio.run(follow(url, print_event))
    except KeyboardInterrupt:
        pass
    except TailError as error:
        raise fail(str(error)) from None


def _tail_sink(
    url: str, symbols: list[str], since_id: int | None, since: datetime | None, limit: int | None
) -> None:
    from streamer.sinks import SinkError
    from streamer.sinks.replay import ReplayFrom, follow_sink
    from streamer.tail import print_event

    try:
        start = ReplayFrom(trade_id=since_id, time=since)
        asyncio.run(follow_sink(url, symbols, start, print_event, limit=limit))
    except KeyboardInterrupt:
        pass
    except SinkError as error:
        raise fail(str(error), 2 if isinstance(error, ValueError) else 1) from None


def demo_command(
    symbols: Annotated[
        list[str] | None,
        typer.Argument(help="Symbols to stream (default: a few with recorded trades)"),
    ] = None,
    speed: Annotated[
        float, typer.Option("--speed", help="Replay speed: 1 is the recorded pace.")
    ] = 20.0,
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="API port; 0 picks a free one.")
    ] = 0,
    duration: Annotated[
        float | None, typer.Option("--duration", help="Stop after this many seconds.")
    ] = None,
) -> None:
    """Run the whole product against a local mock exchange, on a throw-away database."""
    from streamer.demo import DEMO_SYMBOLS, run_demo

    configure_logging("WARNING")
    wanted = normalized(symbols or list(DEMO_SYMBOLS))
    console = Console()
    with exit_on_errors():
        code = asyncio.run(
            run_demo(wanted, speed=speed, port=port, duration=duration, console=console)
        )
    raise typer.Exit(code)
