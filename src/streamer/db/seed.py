"""Filling `settings` with the exchange's symbols: safe to run any number of times.

The chapter's seed script inserts every symbol and fails on the unique index the second time;
here a run inserts only what is new, never touches an existing row's status, and reports (but
keeps) symbols that have left the exchange, since an operator may still have them switched on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from streamer.db.repository import SettingsRepository
from streamer.symbols import exchange_symbol

#: How many gone symbols the summary names before it only counts the rest.
SHOWN_GONE = 10


@dataclass(frozen=True, slots=True)
class SeedReport:
    """What a seed did: new rows, rows already there, and known symbols the source lacks."""

    new: int
    existing: int
    gone: tuple[str, ...]

    def summary(self) -> str:
        return (
            f"{self.new} new, {self.existing} already there, "
            f"{len(self.gone)} gone from the exchange (kept)"
        )

    def gone_line(self) -> str | None:
        """The gone symbols by name (the first few), or None when none are gone."""
        if not self.gone:
            return None
        shown = ", ".join(self.gone[:SHOWN_GONE])
        more = len(self.gone) - SHOWN_GONE
        return f"gone from the exchange, kept as they are: {shown}" + (
            f" and {more} more" if more > 0 else ""
        )


async def seed(
    engine: AsyncEngine,
    symbols: Iterable[str],
    *,
    on_chunk: Callable[[int], None] | None = None,
) -> SeedReport:
    """Insert the symbols not in `settings` yet (status `off`) and report what changed.

    All symbols are validated first and inserted in one transaction, so a bad list writes
    nothing; `on_chunk(n)` reports progress after each chunk of n symbols. Names are stored
    exactly as the exchange lists them (non-ASCII ones too): a listed name that is not already in
    its one spelling (`ethusdt`, `ETH-USDT`) is refused rather than folded into another symbol.
    """
    wanted = {exchange_symbol(symbol) for symbol in symbols}
    repository = SettingsRepository(engine)
    known = await repository.symbols()
    new = await repository.add_missing(wanted, on_chunk=on_chunk)
    return SeedReport(new=new, existing=len(wanted) - new, gone=tuple(sorted(known - wanted)))
