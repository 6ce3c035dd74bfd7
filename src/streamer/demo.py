"""`streamer demo`: the whole product on one machine, with no account and no internet.

A mock exchange replays the recorded trades, a fresh SQLite database is seeded from it, a few
symbols are switched on, and the real service streams them while a live table shows their state.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

from streamer.api.models import SymbolState
from streamer.binance.rest import BinanceRest
from streamer.config import Settings
from streamer.db import SettingsRepository, Status, create_engine, upgrade
from streamer.db.seed import seed
from streamer.mock_exchange import MockConfig, MockExchange
from streamer.otp import ChildState
from streamer.service import Service

DEMO_SYMBOLS = ("ADAUSDT", "FETUSDT", "MATICUSDT", "WAVESUSDT", "ETHUSDT")


async def prepare_database(url: str, rest_url: str, symbols: list[str]) -> None:
    """Migrate, seed from the exchange at `rest_url`, and switch `symbols` on."""
    await upgrade(url)
    engine = create_engine(url)
    try:
        async with BinanceRest(rest_url) as rest:
            info = await rest.exchange_info()
        await seed(engine, [entry.symbol for entry in info.symbols])
        repository = SettingsRepository(engine)
        for symbol in symbols:
            await repository.set_status(symbol, Status.ON)
    finally:
        await engine.dispose()


def render(states: list[SymbolState], api: str) -> Table:
    table = Table(title=f"streamer demo: API and status page at {api}  (Ctrl-C stops)")
    for column in ("symbol", "state", "trades", "trades/s", "last trade id", "restarts", "gaps"):
        table.add_column(column, justify="left" if column in ("symbol", "state") else "right")
    for state in states:
        table.add_row(
            state.symbol,
            state.state,
            str(state.trades),
            f"{state.rate:.1f}",
            str(state.last_trade_id or ""),
            str(state.restarts),
            f"{state.gaps_filled} filled, {state.gaps_lost} lost",
        )
    return table


async def show(service: Service, api: Callable[[], str], console: Console) -> None:
    """Redraw the table once a second on a terminal; print it every two seconds elsewhere."""
    if console.is_terminal:
        with Live(console=console, auto_refresh=False) as live:
            while True:
                states = await service.symbol_states(status=Status.ON)
                live.update(render(states, api()), refresh=True)
                await asyncio.sleep(1.0)
    while True:
        await asyncio.sleep(2.0)
        console.print(render(await service.symbol_states(status=Status.ON), api()))


async def stop_after(service: Service, duration: float | None) -> None:
    """Stop the demo by itself after `duration` seconds (for scripts and tests); None waits."""
    await asyncio.sleep(duration) if duration is not None else await asyncio.Future()
    # A stop asked before the tree runs would be lost: wait for it to be up first.
    while service.root.state is not ChildState.RUNNING:  # noqa: ASYNC110 - no event announces it
        await asyncio.sleep(0.05)
    await service.root.stop()


async def run_demo(
    symbols: list[str], *, speed: float, port: int, duration: float | None, console: Console
) -> int:
    with tempfile.TemporaryDirectory(prefix="streamer-demo-") as folder:
        database_url = f"sqlite:///{Path(folder) / 'demo.db'}"
        async with MockExchange(MockConfig(port=0, speed=speed)) as mock:
            console.print(f"mock exchange: {mock.rest_url} and {mock.ws_url}")
            console.print(f"mock exchange data: {mock.exchange.describe_data()}")
            await prepare_database(database_url, mock.rest_url, symbols)
            listening: list[str] = []
            settings = Settings(
                database_url=database_url,
                ws_url=mock.ws_url,
                rest_url=mock.rest_url,
                host="127.0.0.1",
                port=port,
            )
            service = Service(
                settings,
                on_listening=lambda host, bound: listening.append(f"http://{host}:{bound}"),
            )
            display = asyncio.create_task(
                show(service, lambda: listening[-1] if listening else "(starting)", console)
            )
            stopper = asyncio.create_task(stop_after(service, duration))
            try:
                code = await service.run()
            finally:
                for task in (stopper, display):
                    task.cancel()
                await asyncio.gather(stopper, display, return_exceptions=True)
            console.print("demo stopped" if code == 0 else f"demo failed (exit {code})")
            return code
