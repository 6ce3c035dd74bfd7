"""The settings repository, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from streamer.db import (
    DatabaseUnavailable,
    SchemaOutOfDate,
    SettingsRepository,
    Status,
    UnknownSymbol,
    create_engine,
)
from streamer.db.migrate import downgrade
from streamer.symbols import InvalidSymbol
from tests.ports import closed_port

SYMBOLS = ["ETHUSDT", "ETHBTC", "BTCUSDT", "BNBBTC", "ADAUSDT"]


@pytest.fixture
async def seeded(settings_repo: SettingsRepository) -> SettingsRepository:
    await settings_repo.add_missing(SYMBOLS)
    return settings_repo


async def test_new_symbols_start_off_with_utc_timestamps(seeded: SettingsRepository) -> None:
    """A freshly added symbol is `off`, has a UUID, and UTC timestamps set by the store."""
    setting = await seeded.get("ETHUSDT")
    assert setting.status is Status.OFF
    assert setting.symbol == "ETHUSDT"
    assert setting.id.version == 4
    assert setting.inserted_at.tzinfo is UTC
    assert setting.updated_at == setting.inserted_at
    assert abs(datetime.now(UTC) - setting.inserted_at) < timedelta(minutes=5)


async def test_get_normalises_the_symbol(seeded: SettingsRepository) -> None:
    """`get(" ethusdt ")` finds ETHUSDT."""
    assert (await seeded.get(" ethusdt ")).symbol == "ETHUSDT"


async def test_get_unknown_symbol_raises(seeded: SettingsRepository) -> None:
    """A valid but absent symbol raises UnknownSymbol with a one-line hint to seed."""
    with pytest.raises(UnknownSymbol) as caught:
        await seeded.get("XRPUSDT")
    assert caught.value.symbol == "XRPUSDT"
    assert "\n" not in str(caught.value)
    assert "streamer seed" in str(caught.value)


async def test_malformed_symbol_is_rejected_before_the_database(
    seeded: SettingsRepository,
) -> None:
    """A malformed symbol raises InvalidSymbol and changes nothing."""
    before = await seeded.list()
    with pytest.raises(InvalidSymbol):
        await seeded.set_status("ETH$USDT", Status.ON)
    with pytest.raises(InvalidSymbol):
        await seeded.get("")
    assert await seeded.list() == before


async def test_set_status_persists_and_moves_updated_at(seeded: SettingsRepository) -> None:
    """Switching a symbol on is returned, stored, and advances updated_at only."""
    before = await seeded.get("ethusdt")
    after = await seeded.set_status("ethusdt", Status.ON)
    assert after.status is Status.ON
    assert after.id == before.id
    assert after.inserted_at == before.inserted_at
    assert after.updated_at >= before.updated_at
    assert await seeded.get("ETHUSDT") == after


async def test_set_status_of_unknown_symbol_writes_nothing(seeded: SettingsRepository) -> None:
    """Switching an absent symbol raises UnknownSymbol and adds no row."""
    with pytest.raises(UnknownSymbol):
        await seeded.set_status("XRPUSDT", Status.ON)
    assert await seeded.symbols() == set(SYMBOLS)


async def test_list_filters_by_status_and_prefix(seeded: SettingsRepository) -> None:
    """`list` returns symbol order, and narrows by status and by a normalised prefix."""
    await seeded.set_status("ETHUSDT", Status.ON)
    await seeded.set_status("BTCUSDT", Status.ON)
    assert [s.symbol for s in await seeded.list()] == sorted(SYMBOLS)
    assert [s.symbol for s in await seeded.list(status=Status.ON)] == ["BTCUSDT", "ETHUSDT"]
    assert [s.symbol for s in await seeded.list(prefix=" eth")] == ["ETHBTC", "ETHUSDT"]
    assert [s.symbol for s in await seeded.list(status=Status.OFF, prefix="eth")] == ["ETHBTC"]


async def test_list_rejects_a_malformed_prefix(seeded: SettingsRepository) -> None:
    """A prefix with SQL wildcards or punctuation is an InvalidSymbol, not a LIKE pattern."""
    with pytest.raises(InvalidSymbol):
        await seeded.list(prefix="E%")


async def test_enabled_symbols_lists_only_on(seeded: SettingsRepository) -> None:
    """enabled_symbols is exactly the `on` symbols, sorted."""
    assert await seeded.enabled_symbols() == []
    await seeded.set_status("ADAUSDT", Status.ON)
    await seeded.set_status("ETHBTC", Status.ON)
    await seeded.set_status("ETHBTC", Status.OFF)
    assert await seeded.enabled_symbols() == ["ADAUSDT"]


async def test_add_missing_is_idempotent_and_keeps_statuses(seeded: SettingsRepository) -> None:
    """Adding known symbols again inserts only new ones and never resets a status."""
    await seeded.set_status("ETHUSDT", Status.ON)
    added = await seeded.add_missing([*SYMBOLS, "xrpusdt"], chunk_size=2)
    assert added == 1
    assert (await seeded.get("ETHUSDT")).status is Status.ON
    assert await seeded.symbols() == {*SYMBOLS, "XRPUSDT"}


async def test_add_missing_with_one_bad_symbol_writes_nothing(
    seeded: SettingsRepository,
) -> None:
    """One malformed symbol in a batch rejects the whole batch before any insert."""
    with pytest.raises(InvalidSymbol):
        await seeded.add_missing(["XRPUSDT", "not a symbol"])
    assert await seeded.symbols() == set(SYMBOLS)


async def test_concurrent_status_changes_are_all_applied(
    database_url: str, seeded: SettingsRepository
) -> None:
    """Status changes racing on separate engines each land; none is lost."""
    engines = [create_engine(database_url) for _ in range(4)]
    try:
        repos = [SettingsRepository(engine) for engine in engines]
        results = await asyncio.gather(
            *(
                repos[i % len(repos)].set_status(symbol, Status.ON)
                for i, symbol in enumerate(SYMBOLS * 3)
            )
        )
    finally:
        await asyncio.gather(*(engine.dispose() for engine in engines))
    assert all(result.status is Status.ON for result in results)
    assert await seeded.enabled_symbols() == sorted(SYMBOLS)


async def test_racing_changes_of_one_symbol_end_in_one_of_them(
    database_url: str, seeded: SettingsRepository
) -> None:
    """Racing on/off changes of one symbol are serialised: the stored row is one write, whole."""
    engines = [create_engine(database_url) for _ in range(2)]
    try:
        repos = [SettingsRepository(engine) for engine in engines]
        wanted = [Status.ON, Status.OFF] * 10
        results = await asyncio.gather(
            *(repos[i % 2].set_status("ETHUSDT", status) for i, status in enumerate(wanted))
        )
    finally:
        await asyncio.gather(*(engine.dispose() for engine in engines))
    assert [result.status for result in results] == wanted
    assert await seeded.get("ETHUSDT") in results


async def test_check_schema_passes_on_an_upgraded_database(
    settings_repo: SettingsRepository,
) -> None:
    """check_schema is silent when the schema is at head."""
    await settings_repo.check_schema()


async def test_missing_schema_names_the_upgrade_command(
    database_url: str, engine: AsyncEngine
) -> None:
    """Without the schema, check_schema and reads raise SchemaOutOfDate naming the command."""
    await downgrade(database_url)
    repo = SettingsRepository(engine)
    for attempt in (repo.check_schema(), repo.get("ETHUSDT")):
        with pytest.raises(SchemaOutOfDate) as caught:
            await attempt
        assert "streamer db upgrade --database-url" in str(caught.value)
        assert "\n" not in str(caught.value)


async def test_ping_answers_on_a_live_database(settings_repo: SettingsRepository) -> None:
    """`ping` returns quietly when the database answers."""
    await settings_repo.ping()


async def test_ping_names_a_database_that_cannot_be_reached() -> None:
    """`ping` on a server that is not there raises DatabaseUnavailable naming where it looked."""
    engine = create_engine(f"postgresql://postgres@127.0.0.1:{closed_port()}/streamer")
    try:
        with pytest.raises(DatabaseUnavailable, match=r"127\.0\.0\.1"):
            await SettingsRepository(engine).ping()
    finally:
        await engine.dispose()


async def test_positions_saved_for_symbols_that_are_on_come_back(
    seeded: SettingsRepository,
) -> None:
    """Saved last trade ids of symbols that are on are read back, per symbol."""
    await seeded.set_status("ETHUSDT", Status.ON)
    await seeded.set_status("BTCUSDT", Status.ON)

    await seeded.save_positions({"ETHUSDT": 41, "BTCUSDT": 7})

    assert await seeded.positions() == {"ETHUSDT": 41, "BTCUSDT": 7}


async def test_a_position_of_a_symbol_that_is_off_is_not_saved(
    seeded: SettingsRepository,
) -> None:
    """A save racing a stop cannot write a position for a symbol already switched off."""
    await seeded.save_positions({"ETHUSDT": 41})

    await seeded.set_status("ETHUSDT", Status.ON)

    assert await seeded.positions() == {}


async def test_switching_off_forgets_the_position(seeded: SettingsRepository) -> None:
    """Stopping a symbol clears its saved position, so its next start begins afresh."""
    await seeded.set_status("ETHUSDT", Status.ON)
    await seeded.save_positions({"ETHUSDT": 41})

    await seeded.set_status("ETHUSDT", Status.OFF)
    await seeded.set_status("ETHUSDT", Status.ON)

    assert await seeded.positions() == {}
