"""SQLite backend: the embedded default. WAL mode so reports and exports read while the writer writes.

All of SQLite's SQL lives here. Idempotency is `INSERT OR IGNORE` against a unique (provider,
call_key) index. Reports are served by covering indexes (one per groupable column, each carrying the
time and the summed columns) so a grouped report over a million rows reads an index, never the table.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

from genai_meter._sqlite_wal import connect_wal

from ._backend import CALLS_TABLE, LINES_TABLE, RUNS_TABLE, VERSION_TABLE, Database
from ._errors import LedgerUnavailable
from ._rows import COLUMNS, Row
from ._url import LedgerURL

# Columns each covering index carries after its leading column: enough for every report figure.
_COVERED = "ts, day, cost_usd, input_tokens, output_tokens"

_CACHE_KIB = 65536
_STREAM_CACHE_KIB = 4096

# Schema migrations, in order; version N is reached by running MIGRATIONS[N-1].
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        f"""CREATE TABLE {CALLS_TABLE} (
            id INTEGER PRIMARY KEY,
            call_key TEXT NOT NULL,
            ts REAL NOT NULL,
            day TEXT NOT NULL,
            response_id TEXT,
            request_id TEXT NOT NULL DEFAULT '',
            provider TEXT NOT NULL,
            request_model TEXT NOT NULL,
            response_model TEXT,
            model TEXT NOT NULL,
            operation TEXT NOT NULL,
            user_id TEXT,
            tenant TEXT,
            feature TEXT,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            cache_read_tokens INTEGER NOT NULL DEFAULT 0,
            cache_write_tokens INTEGER NOT NULL DEFAULT 0,
            reasoning_tokens INTEGER NOT NULL DEFAULT 0,
            usage_estimated INTEGER NOT NULL DEFAULT 0,
            cost_input_usd REAL,
            cost_cache_read_usd REAL,
            cost_cache_write_usd REAL,
            cost_output_usd REAL,
            cost_usd REAL,
            cost_source TEXT,
            pricing_version TEXT,
            latency_s REAL NOT NULL DEFAULT 0,
            stream INTEGER NOT NULL DEFAULT 0,
            outcome TEXT NOT NULL,
            error_type TEXT,
            trace_id TEXT,
            span_id TEXT,
            metadata TEXT
        )""",
        f"CREATE UNIQUE INDEX {CALLS_TABLE}_key ON {CALLS_TABLE} (provider, call_key)",
        f"CREATE INDEX {CALLS_TABLE}_ts ON {CALLS_TABLE} ({_COVERED})",
        f"CREATE INDEX {CALLS_TABLE}_user ON {CALLS_TABLE} (user_id, {_COVERED})",
        f"CREATE INDEX {CALLS_TABLE}_tenant ON {CALLS_TABLE} (tenant, {_COVERED})",
        f"CREATE INDEX {CALLS_TABLE}_feature ON {CALLS_TABLE} (feature, {_COVERED})",
        f"CREATE INDEX {CALLS_TABLE}_model ON {CALLS_TABLE} (model, {_COVERED})",
        f"""CREATE TABLE {RUNS_TABLE} (
            id INTEGER PRIMARY KEY,
            run_at REAL NOT NULL,
            provider TEXT NOT NULL,
            source TEXT NOT NULL,
            since_day TEXT NOT NULL,
            until_day TEXT NOT NULL,
            threshold_usd REAL NOT NULL,
            threshold_tokens INTEGER NOT NULL,
            lines INTEGER NOT NULL,
            mismatches INTEGER NOT NULL,
            ledger_cost_usd REAL NOT NULL,
            provider_cost_usd REAL,
            ok INTEGER NOT NULL
        )""",
        f"""CREATE TABLE {LINES_TABLE} (
            run_id INTEGER NOT NULL REFERENCES {RUNS_TABLE} (id) ON DELETE CASCADE,
            day TEXT NOT NULL,
            model TEXT NOT NULL,
            scope TEXT NOT NULL DEFAULT '',
            measure TEXT NOT NULL,
            ledger_value REAL NOT NULL,
            provider_value REAL NOT NULL,
            difference REAL NOT NULL,
            mismatch INTEGER NOT NULL
        )""",
        f"CREATE INDEX {LINES_TABLE}_run ON {LINES_TABLE} (run_id)",
    ),
    (f"ALTER TABLE {CALLS_TABLE} ADD COLUMN service_tier TEXT",),  # 2: the tier a call was served at
)
SCHEMA_VERSION = len(MIGRATIONS)

_INSERT = f"INSERT OR IGNORE INTO {CALLS_TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"


class SQLiteDatabase(Database):
    kind = "sqlite"
    placeholder = "?"

    def __init__(self, url: LedgerURL, *, timeout_s: float = 5.0) -> None:
        self.description = url.target
        path = Path(url.target).expanduser()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE takes the write lock up front,
            # so a busy database fails fast at BEGIN instead of half-way through a batch).
            self._conn = connect_wal(str(path), timeout_s)
            # 64 MiB of page cache: inserts touch six index b-trees at random places; with SQLite's
            # 2 MiB default they miss the cache once a ledger passes a few hundred thousand rows.
            self._conn.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise LedgerUnavailable(f"cannot open SQLite ledger {self.description}: {exc}") from exc

    def _migrate(self) -> None:
        conn = self._conn
        if self._read_version() >= SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version INTEGER NOT NULL)")
            current = self._read_version()
            for statements in MIGRATIONS[current:]:
                for statement in statements:
                    conn.execute(statement)
            conn.execute(f"DELETE FROM {VERSION_TABLE}")
            conn.execute(f"INSERT INTO {VERSION_TABLE} (version) VALUES (?)", (SCHEMA_VERSION,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _read_version(self) -> int:
        exists = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (VERSION_TABLE,)
        ).fetchone()
        if not exists:
            return 0
        row = self._conn.execute(f"SELECT max(version) FROM {VERSION_TABLE}").fetchone()
        return int(row[0] or 0)

    def schema_version(self) -> int:
        return self._read_version()

    def insert_rows(self, rows: Sequence[Row]) -> int:
        conn = self._conn
        before = conn.total_changes
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(_INSERT, rows)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return conn.total_changes - before

    def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql, tuple(params)).fetchall()

    def stream(self, sql: str, params: Sequence[Any] = (), chunk: int = 2000) -> Generator[tuple[Any, ...], None, None]:
        # An export reads every page once: a big cache would only hold pages it will not read again.
        self._conn.execute(f"PRAGMA cache_size=-{_STREAM_CACHE_KIB}")
        cursor = self._conn.execute(sql, tuple(params))
        try:
            while batch := cursor.fetchmany(chunk):
                yield from batch
        finally:
            try:
                cursor.close()
                self._conn.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
            except sqlite3.ProgrammingError:  # the database was closed first: nothing left to reset
                pass

    def save_run(self, run: dict[str, Any], lines: Sequence[dict[str, Any]]) -> int:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            cursor = conn.execute(
                f"INSERT INTO {RUNS_TABLE} ({', '.join(run)}) VALUES ({', '.join('?' for _ in run)})",
                tuple(run.values()),
            )
            run_id = int(cursor.lastrowid or 0)
            if lines:
                names = ["run_id", *lines[0]]
                marks = ", ".join("?" for _ in names)
                conn.executemany(
                    f"INSERT INTO {LINES_TABLE} ({', '.join(names)}) VALUES ({marks})",
                    [(run_id, *line.values()) for line in lines],
                )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return run_id

    def week_start(self, day_column: str) -> str:
        # strftime('%w') is 0 for Sunday; shift so Monday starts the week (ISO 8601).
        weekday = f"CAST(strftime('%w', {day_column}) AS INTEGER)"
        return f"date({day_column}, '-' || (({weekday} + 6) % 7) || ' days')"

    def close(self) -> None:
        try:
            self._conn.close()
        except sqlite3.Error:
            pass
