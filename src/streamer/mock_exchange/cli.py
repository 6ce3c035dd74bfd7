"""`streamer mock-exchange`: run the local Binance until Ctrl-C or SIGTERM.

Prints the REST and websocket base URLs (and the admin one) on stdout once it listens, so a
script can start it and read where to connect. Any start-up failure is one `error:` line on stderr.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer

from streamer.cli_support import fail
from streamer.config import Settings
from streamer.logs import configure_logging
from streamer.mock_exchange.config import Limits, MockConfig
from streamer.mock_exchange.data import DataError
from streamer.mock_exchange.exchange_info import ExchangeInfoError
from streamer.mock_exchange.server import ADMIN, MockExchange


def _off(value: float) -> float | None:
    return None if value <= 0 else value


def _speed(value: str) -> float | None:
    if value.lower() == "max":
        return None
    try:
        speed = float(value)
    except ValueError:
        raise typer.BadParameter(f"expected a positive number or 'max', not {value!r}") from None
    if speed <= 0:
        raise typer.BadParameter(f"expected a positive number or 'max', not {value!r}")
    return speed


def mock_exchange_command(
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="TCP port (0 picks a free one).")
    ] = 8765,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    speed: Annotated[
        str, typer.Option(help="Replay speed: 1 = as recorded, 10 = ten times faster, or 'max'.")
    ] = "1",
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Folder with trades/ and exchange_info/ (env STREAMER_MOCK_DATA)."),
    ] = None,
    exchange_info: Annotated[
        Path | None, typer.Option(help="An exchangeInfo JSON response to serve.")
    ] = None,
    synthetic_rate: Annotated[
        float, typer.Option(help="Trades per second of symbols without recorded data.")
    ] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic trades.")] = 0,
    max_streams: Annotated[int, typer.Option(help="Streams per connection (0 = no limit).")] = 1024,
    max_messages: Annotated[
        int, typer.Option(help="Incoming messages per second per connection (0 = no limit).")
    ] = 5,
    ping_interval: Annotated[float, typer.Option(help="Seconds between pings (0 = none).")] = 20.0,
    pong_timeout: Annotated[float, typer.Option(help="Drop after this long without pong.")] = 60.0,
    lifetime: Annotated[
        float, typer.Option(help="Seconds a connection lives (0 = forever).")
    ] = 86400.0,
    max_attempts: Annotated[
        int, typer.Option(help="Connection attempts per client per window (0 = no limit).")
    ] = 300,
    attempts_window: Annotated[float, typer.Option(help="That window, in seconds.")] = 300.0,
    request_weight: Annotated[
        int, typer.Option(help="REST request weight per IP per minute (0 = no limit).")
    ] = 6000,
    refuse: Annotated[
        int, typer.Option(help="Refuse every request with this status: 429 or 418 (0 = no).")
    ] = 0,
    retry_after: Annotated[int, typer.Option(help="Retry-After of refusals, in seconds.")] = 1,
    slow_rest: Annotated[float, typer.Option(help="Delay every REST answer by seconds.")] = 0.0,
) -> None:
    """Run a local Binance spot market-data server (REST + websocket streams) on one port."""
    configure_logging(Settings().log_level)
    limits = Limits(
        max_streams=max_streams or None,
        max_messages_per_s=max_messages or None,
        ping_interval=_off(ping_interval),
        pong_timeout=pong_timeout,
        lifetime=_off(lifetime),
        max_connection_attempts=max_attempts or None,
        attempts_window=attempts_window,
        request_weight=request_weight or None,
    )
    try:
        config = MockConfig(
            host=host,
            port=port,
            data_dir=data_dir,
            exchange_info=exchange_info,
            speed=_speed(speed),
            synthetic_rate=synthetic_rate,
            seed=seed,
            limits=limits,
        )
        asyncio.run(_serve(config, refuse, retry_after, slow_rest))
    except (OSError, DataError, ExchangeInfoError, ValueError) as exc:
        raise fail(str(exc)) from None


async def _serve(config: MockConfig, refuse: int, retry_after: int, slow_rest: float) -> None:
    mock = MockExchange(config)
    if refuse:
        mock.faults.refuse(refuse, retry_after)
    if slow_rest:
        mock.faults.slow_rest(slow_rest)
    await mock.start()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, lambda: asyncio.ensure_future(mock.stop()))
    typer.echo(f"REST:  {mock.rest_url}")
    typer.echo(f"WS:    {mock.ws_url}")
    typer.echo(f"Admin: {mock.rest_url}{ADMIN}")
    typer.echo(f"Data:  {mock.exchange.describe_data()}")
    preloading = asyncio.ensure_future(mock.preload())
    await mock.wait_stopped()
    preloading.cancel()
    typer.echo("stopped")
