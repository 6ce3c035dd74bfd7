"""The journal: what is appended is read back in order by every cursor, survives a restart,
and is dropped only past the disk budget, with the exact trades lost."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.events import GapNotice, TradeEvent
from streamer.journal import (
    FsyncPolicy,
    Journal,
    JournalError,
    JournalLocked,
    JournalOptions,
)
from streamer.wire import encode_events

SMALL = JournalOptions(
    max_bytes=64 * 1024, segment_bytes=8 * 1024, memory_bytes=0, fsync=FsyncPolicy.NEVER
)

ROOMY = JournalOptions(
    max_bytes=4 << 20, segment_bytes=16 * 1024, memory_bytes=0, fsync=FsyncPolicy.NEVER
)


def trade(symbol: str, trade_id: int) -> TradeEvent:
    return TradeEvent(
        event_type="trade",
        event_time=1_700_000_000_000 + trade_id,
        symbol=symbol,
        trade_id=trade_id,
        price=Decimal("42000.5"),
        quantity=Decimal("0.001"),
        trade_time=1_700_000_000_000 + trade_id,
        buyer_market_maker=trade_id % 2 == 0,
    )


def append(journal: Journal, events: Sequence[TradeEvent | GapNotice]) -> int:
    return journal.append(events, encode_events(events))


def read_all(journal: Journal, name: str) -> list[TradeEvent | GapNotice]:
    cursor = journal.cursor(name)
    out: list[TradeEvent | GapNotice] = []
    while batch := cursor.read_nowait(1000).events:
        out.extend(batch)
    return out


def test_a_cursor_reads_back_what_was_appended_in_order(tmp_path: Path) -> None:
    """Trades and gap notices come back from a cursor as they were appended, in order."""
    journal = Journal.open(tmp_path)
    reader = journal.cursor("nats")
    events: list[TradeEvent | GapNotice] = [trade("BTCUSDT", 1), GapNotice("BTCUSDT", 2, 4)]
    events += [trade("BTCUSDT", 5), trade("ETHUSDT", 9)]
    append(journal, events[:2])
    append(journal, events[2:])
    assert reader.read_nowait(10).events == events
    journal.close()


def test_a_cursor_reads_from_disk_what_left_the_memory(tmp_path: Path) -> None:
    """With no memory kept, a cursor reads every event back from the segments."""
    journal = Journal.open(tmp_path, ROOMY)
    journal.cursor("redis")
    events = [trade("BTCUSDT", i) for i in range(300)]
    for start in range(0, 300, 7):
        append(journal, events[start : start + 7])
    assert read_all(journal, "redis") == events
    journal.close()


def test_every_cursor_reads_at_its_own_pace(tmp_path: Path) -> None:
    """One cursor that has read everything does not move another one."""
    journal = Journal.open(tmp_path)
    fast, slow = journal.cursor("fast"), journal.cursor("slow")
    append(journal, [trade("BTCUSDT", i) for i in range(10)])
    batch = fast.read_nowait(100)
    fast.commit(batch.end)
    assert (fast.lag, slow.lag) == (0, 10)
    assert [e.trade_id for e in slow.read_nowait(3).events] == [0, 1, 2]  # type: ignore[union-attr]
    journal.close()


def test_a_restart_resumes_each_cursor_at_its_commit(tmp_path: Path) -> None:
    """After the journal is reopened, a cursor goes on after what it committed, not before."""
    journal = Journal.open(tmp_path, ROOMY)
    cursor = journal.cursor("parquet")
    append(journal, [trade("BTCUSDT", i) for i in range(100)])
    cursor.commit(cursor.read_nowait(40).end)
    journal.close()
    again = Journal.open(tmp_path, ROOMY)
    rest = read_all(again, "parquet")
    assert [e.trade_id for e in rest] == list(range(40, 100))  # type: ignore[union-attr]
    again.close()


def test_a_rewind_reads_again_what_was_not_committed(tmp_path: Path) -> None:
    """A delivery that failed reads the same events again after `rewind`."""
    journal = Journal.open(tmp_path, ROOMY)
    cursor = journal.cursor("nats")
    append(journal, [trade("BTCUSDT", i) for i in range(50)])
    first = cursor.read_nowait(20)
    cursor.rewind()
    assert cursor.read_nowait(20).events == first.events
    journal.close()


def test_a_second_process_cannot_open_the_same_journal(tmp_path: Path) -> None:
    """Opening a journal another holder has open says so and names the way out."""
    journal = Journal.open(tmp_path)
    with pytest.raises(JournalLocked, match="--journal-dir"):
        Journal.open(tmp_path)
    journal.close()


def test_a_torn_last_append_keeps_the_appends_before_it(tmp_path: Path) -> None:
    """A crash in the middle of an append loses that append only; the next opens cleanly."""
    journal = Journal.open(tmp_path, ROOMY)
    journal.cursor("nats")
    append(journal, [trade("BTCUSDT", i) for i in range(10)])
    append(journal, [trade("BTCUSDT", i) for i in range(10, 20)])
    journal.close()
    segment = sorted((tmp_path / "segments").glob("*.arrow"))[-1]
    data = segment.read_bytes()
    segment.write_bytes(data[: len(data) - 120])
    again = Journal.open(tmp_path, ROOMY)
    assert [e.trade_id for e in read_all(again, "nats")] == list(range(10))  # type: ignore[union-attr]
    append(again, [trade("BTCUSDT", 20)])
    assert again.end == 11
    again.close()


def test_a_damaged_segment_in_the_middle_is_an_error_naming_it(tmp_path: Path) -> None:
    """Only the last segment may be torn; damage before it is reported with the file's name."""
    journal = Journal.open(tmp_path, ROOMY)
    for start in range(0, 400, 20):
        append(journal, [trade("BTCUSDT", i) for i in range(start, start + 20)])
    journal.close()
    segments = sorted((tmp_path / "segments").glob("*.arrow"))
    assert len(segments) > 2
    segments[0].write_bytes(b"not arrow at all")
    with pytest.raises(JournalError, match=segments[0].name):
        Journal.open(tmp_path, ROOMY)


def test_segments_every_cursor_passed_are_deleted(tmp_path: Path) -> None:
    """Once every cursor committed past a segment, it leaves the disk."""
    journal = Journal.open(tmp_path, ROOMY)
    cursor = journal.cursor("nats")
    for start in range(0, 400, 20):
        append(journal, [trade("BTCUSDT", i) for i in range(start, start + 20)])
    before = len(list((tmp_path / "segments").glob("*.arrow")))
    cursor.commit(journal.end)
    after = len(list((tmp_path / "segments").glob("*.arrow")))
    assert before > 2
    assert after == 1
    journal.close()


def test_past_the_budget_a_lagging_cursor_records_exactly_what_it_lost(tmp_path: Path) -> None:
    """The oldest segments go past the budget; the cursor that had not read them owes their
    exact trade ids, and reads on from what is left."""
    journal = Journal.open(tmp_path, SMALL)
    cursor = journal.cursor("nats")
    for start in range(0, 3000, 50):
        append(journal, [trade("BTCUSDT", i) for i in range(start, start + 50)])
    assert journal.size <= SMALL.max_bytes + SMALL.segment_bytes
    (lost,) = cursor.lost["BTCUSDT"]
    rest = [e.trade_id for e in read_all(journal, "nats")]  # type: ignore[union-attr]
    assert lost[0] == 0
    assert rest == list(range(lost[1] + 1, 3000))
    journal.close()


def test_what_a_cursor_owes_survives_a_restart(tmp_path: Path) -> None:
    """Lost ranges are kept with the cursor until the sink settles them."""
    journal = Journal.open(tmp_path, SMALL)
    cursor = journal.cursor("nats")
    for start in range(0, 3000, 50):
        append(journal, [trade("BTCUSDT", i) for i in range(start, start + 50)])
    owed = dict(cursor.lost)
    journal.close()
    again = Journal.open(tmp_path, SMALL)
    reopened = again.cursor("nats")
    assert reopened.lost == owed
    first, last = owed["BTCUSDT"][0]
    reopened.settle("BTCUSDT", first, last)
    assert reopened.lost == {}
    again.close()


async def test_a_waiting_cursor_wakes_on_the_next_append(tmp_path: Path) -> None:
    """`read` waits for an append instead of returning nothing."""
    journal = Journal.open(tmp_path)
    cursor = journal.cursor("nats")
    waiting = asyncio.create_task(cursor.read(100))
    await asyncio.sleep(0)
    assert not waiting.done()
    append(journal, [trade("BTCUSDT", 1)])
    batch = await waiting
    assert batch.events == [trade("BTCUSDT", 1)]
    journal.close()


def test_synced_positions_follow_the_fsync_policy(tmp_path: Path) -> None:
    """Under the interval policy, a trade counts as synced only after `sync`."""
    journal = Journal.open(tmp_path, JournalOptions(fsync=FsyncPolicy.INTERVAL))
    append(journal, [trade("BTCUSDT", 7)])
    assert "BTCUSDT" not in journal.synced
    journal.sync()
    assert journal.synced == {"BTCUSDT": 7}
    journal.close()


def test_a_new_cursor_starts_at_the_end(tmp_path: Path) -> None:
    """A sink added later does not replay what the journal held before it."""
    journal = Journal.open(tmp_path)
    journal.cursor("nats")
    append(journal, [trade("BTCUSDT", 1)])
    late = journal.cursor("redis")
    assert late.read_nowait(10).events == []
    journal.close()


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 60), min_size=1, max_size=60),
    commit_every=st.integers(1, 5),
)
def test_every_trade_is_delivered_or_owed_exactly(
    tmp_path_factory: pytest.TempPathFactory, sizes: list[int], commit_every: int
) -> None:
    """Whatever the budget drops, each appended trade is either read or in the lost ranges."""
    path = tmp_path_factory.mktemp("journal")
    journal = Journal.open(path, SMALL)
    cursor = journal.cursor("sink")
    next_id = 0
    read: list[int] = []
    for index, size in enumerate(sizes):
        append(journal, [trade("BTCUSDT", i) for i in range(next_id, next_id + size)])
        next_id += size
        if index % commit_every == 0:
            batch = cursor.read_nowait(25)
            read += [e.trade_id for e in batch.events]  # type: ignore[union-attr]
            cursor.commit(batch.end)
    read += [e.trade_id for e in read_all(journal, "sink")]  # type: ignore[union-attr]
    owed = {i for a, b in cursor.lost.get("BTCUSDT", []) for i in range(a, b + 1)}
    assert sorted(read) == read
    assert set(read) | owed == set(range(next_id))
    assert not set(read) & owed
    journal.close()


def test_saved_positions_never_pass_what_is_on_disk(tmp_path: Path) -> None:
    """`hold_back` keeps a stream position at the last synced trade; a symbol with appends but
    nothing synced yet is left out (its last save stands)."""
    journal = Journal.open(tmp_path, JournalOptions(fsync=FsyncPolicy.INTERVAL))
    append(journal, [trade("BTCUSDT", 7)])
    journal.sync()
    append(journal, [trade("BTCUSDT", 8), trade("ETHUSDT", 3)])
    held = journal.hold_back({"BTCUSDT": 8, "ETHUSDT": 3, "ADAUSDT": 1})
    assert held == {"BTCUSDT": 7, "ADAUSDT": 1}
    journal.close()


def test_a_reopened_journal_knows_each_symbols_last_trade(tmp_path: Path) -> None:
    """What a restart resumes from when the database saved less: the journal's own last ids."""
    journal = Journal.open(tmp_path)
    append(journal, [trade("BTCUSDT", 7), trade("ETHUSDT", 3), trade("BTCUSDT", 9)])
    journal.close()
    again = Journal.open(tmp_path)
    assert again.synced == {"BTCUSDT": 9, "ETHUSDT": 3}
    again.close()
