"""Spool appends are all or nothing: a failed or crashed append never glues the next batch to a
torn line (which a replay would set aside, losing the next batch's first row)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from genai_meter.ledger._backend import connect
from genai_meter.ledger._rows import Row, RowMaker
from genai_meter.ledger._spool import Spool

from ._records import many

# Appends batch "ok" (3 rows), then batch "cut" (100 rows) under a file size limit that lets only
# part of it reach the disk (the write fails with EFBIG, as a full disk fails with ENOSPC), then,
# the limit lifted, batch "later" (3 rows). A real failing write, without a small filesystem.
_APPEND_UNDER_A_SIZE_LIMIT = """
import resource, signal, sys
from genai_meter.ledger._rows import RowMaker
from genai_meter.ledger._spool import Spool
from tests.ledger._records import many

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead of killing us
spool, maker = Spool(sys.argv[1]), RowMaker()
spool.append([maker.row(r) for r in many(3, prefix="ok")])
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (spool.path.stat().st_size + 500, hard))
try:
    spool.append([maker.row(r) for r in many(100, prefix="cut")])
except OSError as error:
    print(type(error).__name__, error.errno)
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
spool.append([maker.row(r) for r in many(3, prefix="later")])
"""


def _replay(spool: Spool, tmp_path: Path) -> tuple[list[str], list[str]]:
    """(call keys stored, lines set aside) when `spool` is replayed into a new SQLite ledger."""
    db = connect(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    rejected: list[str] = []
    try:
        spool.replay(db.insert_rows, reject=lambda line, error: rejected.append(line))
        stored = [str(r[0]) for r in db.fetch_all("SELECT call_key FROM genai_meter_calls ORDER BY call_key")]
    finally:
        db.close()
    return stored, rejected


@pytest.mark.skipif(sys.platform == "win32", reason="needs RLIMIT_FSIZE")
def test_an_append_cut_short_leaves_nothing_behind(spool_path: Path, tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", _APPEND_UNDER_A_SIZE_LIMIT, str(spool_path)],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=60,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "OSError 27\n", "")  # EFBIG
    text = spool_path.read_text()
    assert "cut-" not in text, "the part of the failed batch that reached the disk is cut off again"
    stored, rejected = _replay(Spool(spool_path), tmp_path)
    assert stored == ["later-0", "later-1", "later-2", "ok-0", "ok-1", "ok-2"]
    assert rejected == []


def test_an_append_after_a_torn_line_starts_a_line_of_its_own(spool_path: Path, tmp_path: Path) -> None:
    """A line torn by a crash mid-append (no newline) is set aside alone on replay; the next
    append's first row used to be glued to it and set aside with it."""
    maker = RowMaker()
    rows: list[Row] = [maker.row(r) for r in many(2, prefix="later")]
    spool_path.write_bytes(b'["torn-by-a-crash",17')
    spool = Spool(spool_path)
    spool.append(rows)
    stored, rejected = _replay(spool, tmp_path)
    assert (stored, rejected) == (["later-0", "later-1"], ['["torn-by-a-crash",17'])
