"""Opening a SQLite file in WAL mode when other processes open it at the same moment.

`PRAGMA journal_mode=WAL` needs an exclusive lock and, unlike every other statement, does not wait
for SQLite's busy timeout: when two processes open a new file together, one of them gets "database
is locked" at once. Both the ledger and the budget store are opened that way by every worker of a
service starting up, so the switch is retried here until the connection's own timeout runs out.
"""

from __future__ import annotations

import sqlite3
import time

_RETRY_PAUSE_S = 0.01


def connect_wal(path: str, timeout_s: float) -> sqlite3.Connection:
    """An autocommit connection (explicit transactions only) to `path` in WAL mode, synchronous=NORMAL."""
    conn = sqlite3.connect(path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() >= deadline:
                    raise
                time.sleep(_RETRY_PAUSE_S)
        conn.execute("PRAGMA synchronous=NORMAL")
    except BaseException:
        conn.close()
        raise
    return conn
