"""The application tree as a whole: what it refuses to be built or started on."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamer.api.security import TokenRequired
from streamer.config import Settings
from streamer.db import DatabaseCorrupt
from streamer.service import Service


def test_a_service_beyond_loopback_needs_a_token() -> None:
    """Building a service bound to 0.0.0.0 without a token fails with the fix in the message."""
    with pytest.raises(TokenRequired, match="STREAMER_TOKEN"):
        Service(Settings(host="0.0.0.0", database_url="sqlite:///:memory:"))


async def test_a_file_that_is_not_a_database_fails_at_once(tmp_path: Path) -> None:
    """An SQLite file of something else is one error before anything starts, not an outage."""
    corrupt = tmp_path / "streamer.db"
    corrupt.write_bytes(b"this is a text file, not SQLite\n" * 200)
    service = Service(Settings(database_url=f"sqlite:///{corrupt}", port=0), http=False)

    with pytest.raises(DatabaseCorrupt, match="is not an SQLite database") as caught:
        await service.run()

    assert "\n" not in str(caught.value)
    assert service.root.which_children() == []
