"""Several processes opening the same new SQLite files at the same moment, as every worker of a
service does at start-up with the ledger and the budget store: none may get "database is locked"
(SQLite's switch to WAL does not wait for the busy timeout; this failed CI once)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from genai_meter._sqlite_wal import connect_wal

_OPENER = """
import sys, time
from genai_meter.budgets._sqlite import SQLiteStore
from genai_meter.ledger._sqlite import SQLiteDatabase
from genai_meter.ledger._url import parse_ledger_url

folder, start_at, rounds, gap = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
for round_number in range(rounds):
    time.sleep(max(0.0, start_at + round_number * gap - time.time()))
    try:
        store = SQLiteStore(f"{folder}/budgets-{round_number}.db", time.time)
        store.blocked()
        ledger = SQLiteDatabase(parse_ledger_url(f"sqlite:///{folder}/ledger-{round_number}.db"))
        print("ok", flush=True)
    except Exception as error:
        print("error:", error, flush=True)
"""
ROUNDS = 10
PROCESSES = 4  # without the retry, about one round in two had a "database is locked" here
GAP_S = 0.25


def test_processes_opening_new_ledger_and_budget_files_together_all_succeed(tmp_path: Path) -> None:
    start_at = time.time() + 4.0  # after every process has imported genai-meter
    openers = [
        subprocess.Popen(
            [sys.executable, "-c", _OPENER, str(tmp_path), f"{start_at:.6f}", str(ROUNDS), str(GAP_S)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    outputs = [line for opener in openers for line in opener.communicate(timeout=60)[0].splitlines()]
    assert outputs == ["ok"] * (ROUNDS * PROCESSES)


def test_an_unopenable_path_still_fails_with_sqlites_own_error(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="unable to open database file"):
        connect_wal(str(tmp_path), 0.2)
