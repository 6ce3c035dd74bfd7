"""The fault switchboard: its checks and its admin dispatch (their effects: test_connection)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from streamer.mock_exchange.config import MockConfig
from streamer.mock_exchange.connection import MockConnection
from streamer.mock_exchange.exchange import Exchange
from streamer.mock_exchange.faults import FaultError, Faults, Refusal


def no_connections() -> Iterable[MockConnection]:
    return []


@pytest.fixture
def faults(tiny_data: Path) -> Faults:
    return Faults(Exchange(MockConfig(data_dir=tiny_data, speed=None)), no_connections)


def test_connection_faults_count_their_targets(faults: Faults) -> None:
    """With no connection open, a fault for all of them touches none."""
    assert faults.drop() == 0
    assert faults.stall() == 0
    assert faults.server_shutdown() == 0


def test_unknown_connection_is_an_error(faults: Faults) -> None:
    """Naming a connection that is not open is refused."""
    with pytest.raises(FaultError, match="no open connection with id 3"):
        faults.drop(3)


def test_skip_ids_names_the_skipped_trades(faults: Faults) -> None:
    """skip_ids returns the ids that the streams will not carry (symbol case does not matter)."""
    assert faults.skip_ids("bnbbtc", 2) == [100, 101]
    assert faults.duplicate_ids("BNBBTC", 1) == [100]


@pytest.mark.parametrize(("symbol", "count"), [("NOPEBTC", 1), ("BNBBTC", 0)])
def test_market_fault_checks(faults: Faults, symbol: str, count: int) -> None:
    """An unknown symbol or a count below one is refused."""
    with pytest.raises(FaultError):
        faults.skip_ids(symbol, count)


def test_refusal_status_is_429_or_418(faults: Faults) -> None:
    """Only Binance's two refusal statuses can be chosen."""
    faults.refuse(418, retry_after=3)
    assert faults.refusal == Refusal(418, 3)
    with pytest.raises(FaultError):
        faults.refuse(503)


async def test_tcp_refusal_is_switched_off_by_accept(faults: Faults) -> None:
    """refuse_tcp is a switch that accept turns off again (any number of times)."""
    await faults.refuse_tcp()
    assert faults.state()["refusing_tcp"] is True
    await faults.accept()
    await faults.accept()
    assert faults.state() == {"refusal": None, "refusing_tcp": False, "rest_delay": 0.0}


def test_negative_rest_delay_is_refused(faults: Faults) -> None:
    """A REST delay cannot be negative."""
    with pytest.raises(FaultError):
        faults.slow_rest(-1)


async def test_admin_dispatch(faults: Faults) -> None:
    """apply() maps a fault name and string parameters onto the fault."""
    assert await faults.apply("skip_ids", {"symbol": "BNBBTC", "count": "3"}) == [100, 101, 102]
    await faults.apply("refuse", {"status": "418", "retry_after": "9"})
    await faults.apply("slow_rest", {"seconds": "0.5"})
    await faults.apply("refuse", {"mode": "tcp"})
    assert faults.state() == {
        "refusal": {"status": 418, "retry_after": 9},
        "refusing_tcp": True,
        "rest_delay": 0.5,
    }
    await faults.apply("accept", {})
    assert faults.state() == {"refusal": None, "refusing_tcp": False, "rest_delay": 0.5}


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("explode", {}),
        ("drop", {"connection": "one"}),
        ("skip_ids", {}),
        ("server_shutdown", {"close_after": "later"}),
    ],
)
async def test_admin_dispatch_errors(faults: Faults, name: str, params: dict[str, str]) -> None:
    """Unknown faults and unreadable parameters become a FaultError."""
    with pytest.raises(FaultError):
        await faults.apply(name, params)
