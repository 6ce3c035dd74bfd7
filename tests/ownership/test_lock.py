"""The SQLite single-instance lock: held while a service runs, refused to a second one."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamer.errors import StreamerError
from streamer.ownership.lock import InstanceLock, InstanceLocked


def test_a_second_holder_is_refused_with_the_first_ones_name(tmp_path: Path) -> None:
    """While one instance holds the lock, another gets an error naming it; after release, the
    lock can be taken again."""
    database = tmp_path / "data" / "streamer.db"
    first, second = InstanceLock(database), InstanceLock(database)
    first.acquire("alpha", "127.0.0.1:8000")
    try:
        with pytest.raises(InstanceLocked, match=r"alpha at 127\.0\.0\.1:8000") as caught:
            second.acquire("beta", "127.0.0.1:8001")
        assert isinstance(caught.value, StreamerError)
        assert str(database) in str(caught.value)
    finally:
        first.release()
    second.acquire("beta", "127.0.0.1:8001")
    second.release()
    assert first.path == database.with_name("streamer.db.lock")
