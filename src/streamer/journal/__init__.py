"""The durable journal between the stream and the sinks: one append per batch, a cursor per sink."""

from streamer.journal._journal import (
    Cursor,
    FsyncPolicy,
    Journal,
    JournalBatch,
    JournalError,
    JournalFull,
    JournalLocked,
    JournalOptions,
    JournalStats,
    default_journal_dir,
    options_for,
)

__all__ = [
    "Cursor",
    "FsyncPolicy",
    "Journal",
    "JournalBatch",
    "JournalError",
    "JournalFull",
    "JournalLocked",
    "JournalOptions",
    "JournalStats",
    "default_journal_dir",
    "options_for",
]
