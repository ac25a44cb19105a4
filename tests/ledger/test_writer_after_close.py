"""Records submitted to a writer that is already closed are written, not lost.

This happens when a call was in flight when `configure()` replaced the runtime (the call keeps the
runtime, and the writer, it started with), and at interpreter exit when a stream is finalised after
the writer's own exit hook (`tests/robustness/test_ledger_lifecycle.py` shows both through the
instrumentation). The writer thread has stopped, so the submitting thread writes the row itself.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from genai_meter.ledger import LedgerWriter, open_ledger

from ._records import many


def _count(url: str) -> int:
    with open_ledger(url) as ledger:
        return ledger.count()


def test_records_submitted_after_close_are_written(
    sqlite_url: str, spool_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="genai_meter")
    records = many(12)
    writer = LedgerWriter(sqlite_url, spool_path=spool_path, batch_size=4)
    for record in records[:5]:
        writer.submit(record)
    writer.close()
    assert _count(sqlite_url) == 5
    for record in records[5:]:  # 7 more, one at a time, after close
        writer.submit(record)
    assert _count(sqlite_url) == 12
    assert (writer.rows_written, writer.rows_spooled, writer.faults) == (12, 0, 0)
    assert writer.flush()  # nothing held: the late records were written when they were submitted
    assert not spool_path.exists() or spool_path.stat().st_size == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    writer.close()  # closing again changes nothing
    assert _count(sqlite_url) == 12


def test_late_record_is_spooled_while_the_database_is_locked(sqlite_url: str, spool_path: Path) -> None:
    """A late record meeting a locked database waits in the spool (never in the app's thread for
    long, never lost), and the next writer for that ledger replays it."""
    records = many(3)
    writer = LedgerWriter(sqlite_url, spool_path=spool_path, db_timeout_s=0.05)
    writer.submit(records[0])
    writer.close()
    path = sqlite_url[len("sqlite:///") :]
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        writer.submit(records[1])  # the database is locked: spooled
        writer.submit(records[2])  # in back-off: spooled at once
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert (writer.rows_written, writer.rows_spooled) == (1, 2)
    assert _count(sqlite_url) == 1
    with LedgerWriter(sqlite_url, spool_path=spool_path) as again:
        pass
    assert again.rows_written == 2
    assert _count(sqlite_url) == 3
