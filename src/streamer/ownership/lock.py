"""SQLite serves one instance: a second `streamer run` on the same file refuses to start.

The lock is an exclusive `flock` on a file beside the database, taken for as long as the service
runs and released by the kernel when the process ends however it ends, so a crash never leaves
a stale lock behind. The file holds the running instance's id and address for the error message.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from streamer.errors import StreamerError


class InstanceLocked(StreamerError, RuntimeError):
    """Another instance already runs on this SQLite database."""


class InstanceLock:
    """The single-instance lock of the SQLite database at `database`."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.path = database.with_name(database.name + ".lock")
        self._file: IO[str] | None = None

    def acquire(self, instance_id: str, address: str) -> None:
        """Take the lock and write who holds it; `InstanceLocked` naming the holder if taken."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise InstanceLocked(
                f"instance {holder} already runs on SQLite database {self.database}; "
                "SQLite serves one instance: use PostgreSQL to run several"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{instance_id} at {address}\n")
        handle.flush()
        os.fsync(handle.fileno())
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
