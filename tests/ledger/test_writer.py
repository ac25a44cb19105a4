"""The writer: exact rows for every kind of record, idempotency, and no loss across an outage."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from genai_meter.ledger import LedgerWriter, open_ledger

from ._records import expected_rows, kinds, many


def _rows(url: str) -> list[dict[str, object]]:
    with open_ledger(url) as ledger:
        return list(ledger.export())


def _count(url: str) -> int:
    with open_ledger(url) as ledger:
        return ledger.count()


def test_exact_rows_for_each_kind_of_record(ledger_url: str, spool_path: Path) -> None:
    writer = LedgerWriter(ledger_url, spool_path=spool_path, metadata_keys=None, max_metadata_items=16)
    for record in kinds():
        writer.submit(record)
    writer.close()
    assert _rows(ledger_url) == expected_rows()
    assert (writer.rows_written, writer.rows_spooled, writer.faults) == (5, 0, 0)


def test_same_records_twice_add_nothing(ledger_url: str, spool_path: Path) -> None:
    records = kinds() + many(300)
    with LedgerWriter(ledger_url, spool_path=spool_path, batch_size=64) as writer:
        for record in records:
            writer.submit(record)
        assert writer.flush()
        for record in records:
            writer.submit(record)
    assert _count(ledger_url) == 305
    assert writer.rows_written == 305
    # A second writer (another process, a replay) adds nothing either.
    with LedgerWriter(ledger_url, spool_path=spool_path) as again:
        for record in records:
            again.submit(record)
    assert _count(ledger_url) == 305
    assert again.rows_written == 0


def test_metadata_is_bounded(sqlite_url: str, spool_path: Path) -> None:
    record = many(1)[0]
    record.metadata = {"keep": "a" * 1000, "other": 1, "third": None, "fourth": 2.5}
    with LedgerWriter(
        sqlite_url, spool_path=spool_path, metadata_keys={"keep", "third", "fourth"}, max_metadata_items=2
    ) as writer:
        writer.submit(record)
    assert _rows(sqlite_url)[0]["metadata"] == {"keep": "a" * 256, "third": None}


def test_flush_waits_until_rows_are_in_the_database(sqlite_url: str, spool_path: Path) -> None:
    writer = LedgerWriter(sqlite_url, spool_path=spool_path, flush_interval_s=60)
    for record in many(1234):
        writer.submit(record)
    assert writer.flush(10)
    assert _count(sqlite_url) == 1234
    writer.close()


def test_sqlite_locked_mid_run_spools_then_replays_exactly(sqlite_url: str, spool_path: Path) -> None:
    records = many(3000)
    writer = LedgerWriter(sqlite_url, spool_path=spool_path, batch_size=200, db_timeout_s=0.05)
    for record in records[:1000]:
        writer.submit(record)
    assert writer.flush()
    assert _count(sqlite_url) == 1000

    # Another connection holds the write lock: the database is "down" for the writer.
    path = sqlite_url[len("sqlite:///") :]
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    for record in records[1000:2000]:
        writer.submit(record)
    assert writer.flush()
    assert writer.rows_spooled == 1000
    assert writer.faults >= 1
    assert spool_path.stat().st_size > 0
    assert writer.rows_dead_lettered == 0, "a locked database is an outage: no row is set aside"
    blocker.execute("ROLLBACK")
    blocker.close()

    for record in records[2000:]:
        writer.submit(record)
    writer.close()
    assert _count(sqlite_url) == 3000
    assert writer.rows_written == 3000
    assert spool_path.stat().st_size == 0
    assert not writer.dead_letter_path.exists()


def test_exit_with_database_down_spools_and_next_writer_replays(sqlite_url: str, spool_path: Path) -> None:
    path = sqlite_url[len("sqlite:///") :]
    LedgerWriter(sqlite_url, spool_path=spool_path).close()  # create the schema
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    writer = LedgerWriter(sqlite_url, spool_path=spool_path, db_timeout_s=0.05)
    for record in many(500):
        writer.submit(record)
    writer.close()  # what atexit does
    assert writer.rows_spooled == 500
    blocker.execute("ROLLBACK")
    blocker.close()

    later = LedgerWriter(sqlite_url, spool_path=spool_path, flush_interval_s=0.05)
    later.submit(many(1, prefix="later")[0])
    later.close()
    assert _count(sqlite_url) == 501


def test_submit_never_raises_and_counts_bad_records(sqlite_url: str, spool_path: Path) -> None:
    writer = LedgerWriter(sqlite_url, spool_path=spool_path)
    bad = many(1)[0]
    bad.input_tokens = "lots"  # type: ignore[assignment]
    writer.submit(bad)
    writer.submit(many(1, prefix="good")[0])
    writer.close()
    assert writer.faults == 1
    assert _count(sqlite_url) == 1
    writer.submit(many(1, prefix="late")[0])  # after close: written by this thread, not raised
    assert writer.faults == 1
    assert _count(sqlite_url) == 2


def test_many_threads_submitting(sqlite_url: str, spool_path: Path) -> None:
    writer = LedgerWriter(sqlite_url, spool_path=spool_path, batch_size=100)

    def work(t: int) -> None:
        for record in many(1000, prefix=f"t{t}"):
            writer.submit(record)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.close()
    assert _count(sqlite_url) == 4000


def test_bad_url_is_a_clear_error() -> None:
    from genai_meter.ledger import LedgerURLError

    with pytest.raises(LedgerURLError, match="unknown scheme 'mysql'"):
        LedgerWriter("mysql://x/y")
