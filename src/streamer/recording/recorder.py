"""`streamer record`: the service with one Parquet sink, its settings kept inside the recording.

A recording must go on exactly where it stopped, however it stopped. The sink's own last trade
ids (read from the parts, after rolling a crashed journal into them) are saved as the symbols'
stream positions before the service starts, so the stream back-fills from the last recorded trade
and whatever the exchange can no longer give becomes a row of the gap ledger.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

from streamer.config import Settings
from streamer.db import SettingsRepository, Status, create_engine, upgrade
from streamer.db.seed import seed
from streamer.sinks.parquet import ParquetSink

DATABASE = "_streamer.db"
"""The recorder's settings database, inside the recording (readers skip `_` names)."""


def recorder_settings(folder: Path, base: Settings) -> Settings:
    """`base` with the recording's own database and the recording as the only sink."""
    return base.model_copy(
        update={
            "database_url": f"sqlite:///{folder / DATABASE}",
            "sinks": [f"parquet://{quote(str(folder))}"],
            "sink_required": True,
        }
    )


async def recorded_positions(folder: Path) -> dict[str, int]:
    """The last recorded trade id per symbol; `SinkError` if another process records there."""
    sink = ParquetSink(folder)
    await sink.open()
    try:
        return dict(sink.last_ids)
    finally:
        await sink.close()


async def prepare_database(
    database_url: str, symbols: Sequence[str], positions: Mapping[str, int]
) -> None:
    """Exactly `symbols` on, each resuming after its last recorded trade."""
    await upgrade(database_url)
    engine = create_engine(database_url)
    try:
        repository = SettingsRepository(engine)
        await seed(engine, symbols)
        for setting in await repository.list(status=Status.ON):
            if setting.symbol not in symbols:
                await repository.set_status(setting.symbol, Status.OFF)
        for symbol in symbols:
            await repository.set_status(symbol, Status.ON)
        await repository.save_positions({s: positions[s] for s in symbols if s in positions})
    finally:
        await engine.dispose()
