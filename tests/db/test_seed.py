"""Seeding settings from exchangeInfo: idempotent, status-preserving, all or nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from streamer.binance.rest import decode_exchange_info
from streamer.db import SettingsRepository, Status
from streamer.db.seed import SeedReport, seed
from streamer.symbols import InvalidSymbol

RECORDED = (
    Path(__file__).resolve().parents[3]
    / "shared/data/exchange_info/binance-spot-exchangeInfo-2021-10-12.json"
)


@pytest.fixture(scope="module")
def recorded_symbols() -> list[str]:
    if not RECORDED.exists():
        pytest.skip(f"recorded data not found at {RECORDED}")
    return [entry.symbol for entry in decode_exchange_info(RECORDED.read_bytes(), "").symbols]


async def test_recorded_exchange_gives_1695_settings_all_off(
    engine: AsyncEngine, recorded_symbols: list[str]
) -> None:
    """Seeding the real 2021-10-12 response stores exactly its 1,695 symbols, all `off`."""
    report = await seed(engine, recorded_symbols)
    assert report == SeedReport(new=1695, existing=0, gone=())
    settings = await SettingsRepository(engine).list()
    assert len(settings) == 1695
    assert {setting.status for setting in settings} == {Status.OFF}


async def test_seeding_again_adds_nothing_and_keeps_statuses(
    engine: AsyncEngine, recorded_symbols: list[str]
) -> None:
    """A second seed inserts none and leaves statuses changed in between as they are."""
    await seed(engine, recorded_symbols)
    repo = SettingsRepository(engine)
    await repo.set_status("ETHUSDT", Status.ON)
    await repo.set_status("BNBBTC", Status.ON)
    before = await repo.list()
    report = await seed(engine, recorded_symbols)
    assert report == SeedReport(new=0, existing=1695, gone=())
    assert await repo.list() == before
    assert await repo.enabled_symbols() == ["BNBBTC", "ETHUSDT"]


async def test_newer_response_adds_just_the_new_and_reports_the_gone(
    settings_repo: SettingsRepository, engine: AsyncEngine
) -> None:
    """New symbols are added; symbols missing from the source are reported and kept, status too."""
    await seed(engine, ["ETHUSDT", "BTCUSDT", "LUNAUSDT"])
    await settings_repo.set_status("LUNAUSDT", Status.ON)
    report = await seed(engine, ["ETHUSDT", "BTCUSDT", "SOLUSDT", "PEPEUSDT"])
    assert report == SeedReport(new=2, existing=2, gone=("LUNAUSDT",))
    assert await settings_repo.symbols() == {
        "ETHUSDT",
        "BTCUSDT",
        "LUNAUSDT",
        "SOLUSDT",
        "PEPEUSDT",
    }
    assert (await settings_repo.get("LUNAUSDT")).status is Status.ON


async def test_a_malformed_symbol_writes_nothing(
    settings_repo: SettingsRepository, engine: AsyncEngine
) -> None:
    """One malformed symbol rejects the whole seed before any row is written."""
    with pytest.raises(InvalidSymbol):
        await seed(engine, ["ETHUSDT", "BTC-USDT"])
    assert await settings_repo.symbols() == set()


async def test_non_ascii_symbols_are_seeded_as_listed(
    settings_repo: SettingsRepository, engine: AsyncEngine
) -> None:
    """A Unicode symbol (as on the spot testnet) is stored exactly as listed, beside the others."""
    report = await seed(engine, ["ETHUSDT", "这是测试币456", "ETHU\u017fDT"])
    assert report.new == 3
    assert await settings_repo.symbols() == {"ETHUSDT", "这是测试币456", "ETHU\u017fDT"}
    assert (await settings_repo.get("这是测试币456")).status is Status.OFF


@pytest.mark.parametrize("listed", ["ethusdt", "ETH-USDT", "ETH/USDT"])
async def test_a_listed_name_is_never_folded_into_another(
    settings_repo: SettingsRepository, engine: AsyncEngine, listed: str
) -> None:
    """A listed name that is not in its one spelling is refused, not stored as ETHUSDT."""
    with pytest.raises(InvalidSymbol, match="listed symbol"):
        await seed(engine, ["BTCUSDT", listed])
    assert await settings_repo.symbols() == set()


async def test_progress_is_reported_per_chunk(
    engine: AsyncEngine, recorded_symbols: list[str]
) -> None:
    """on_chunk is told every chunk, and the counts add up to all the symbols."""
    chunks: list[int] = []
    await seed(engine, recorded_symbols, on_chunk=chunks.append)
    assert sum(chunks) == 1695
    assert len(chunks) == 4  # chunks of 500


def test_summary_and_gone_line() -> None:
    """The summary counts new/existing/gone in one line; the gone line names up to ten."""
    report = SeedReport(new=3, existing=5, gone=tuple(f"OLD{i:02d}USDT" for i in range(12)))
    assert report.summary() == "3 new, 5 already there, 12 gone from the exchange (kept)"
    gone = report.gone_line()
    assert gone is not None
    assert gone.endswith("OLD09USDT and 2 more")
    assert SeedReport(new=0, existing=1, gone=()).gone_line() is None
