"""What the shared ledger logic needs from a database, whichever it is.

Everything dialect-specific (DDL, migrations, the idempotent insert, date arithmetic, placeholders,
streaming cursors) lives in `_sqlite` or `_postgres`; the writer, reports, export, projection and
reconciliation speak only to this interface.
"""

from __future__ import annotations

import sqlite3
import sys
from abc import ABC, abstractmethod
from collections.abc import Generator, Sequence
from typing import Any

from ._errors import LedgerUnavailable
from ._rows import Row
from ._url import LedgerURL, parse_ledger_url

CALLS_TABLE = "genai_meter_calls"
RUNS_TABLE = "genai_meter_reconciliations"
LINES_TABLE = "genai_meter_reconciliation_lines"
VERSION_TABLE = "genai_meter_schema_version"

# Tables in the order a reset (tests) must drop them.
TABLES = (LINES_TABLE, RUNS_TABLE, CALLS_TABLE, VERSION_TABLE)


class Database(ABC):
    """One open connection to a ledger database, its schema migrated to the current version."""

    kind: str
    placeholder: str
    description: str

    @abstractmethod
    def insert_rows(self, rows: Sequence[Row]) -> int:
        """Insert rows in one transaction, skipping rows whose key is already there; returns rows added."""

    @abstractmethod
    def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read query."""

    @abstractmethod
    def stream(self, sql: str, params: Sequence[Any] = (), chunk: int = 2000) -> Generator[tuple[Any, ...], None, None]:
        """Run a read query, yielding rows without holding them all in memory."""

    @abstractmethod
    def save_run(self, run: dict[str, Any], lines: Sequence[dict[str, Any]]) -> int:
        """Store one reconciliation run and its lines in one transaction; returns the run id.

        Keys of `run` and of each line are column names fixed by the caller (never user input).
        """

    @abstractmethod
    def week_start(self, day_column: str) -> str:
        """SQL for the Monday (YYYY-MM-DD) of the week of a YYYY-MM-DD column."""

    @abstractmethod
    def schema_version(self) -> int:
        """The schema version recorded in the database."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection (idempotent)."""


def is_outage(error: BaseException) -> bool:
    """Whether an error says the database as a whole is unreachable, busy or refusing to work (keep
    the rows in the spool and try again later) rather than that it refused the rows sent (retry them
    one by one and set aside the one refused on its own). Of the errors of neither driver, only
    those of binding a value (TypeError, ValueError, OverflowError: a value Python cannot convert)
    are the rows' fault; anything else (a bug) keeps the rows in the spool, replayed once it is
    fixed, rather than setting every row aside. An outage never sets a row aside.
    """
    if isinstance(error, LedgerUnavailable | OSError):
        return True
    if isinstance(error, sqlite3.Error):
        # The rows' fault: a constraint (Integrity), a value too big (Data), a value SQLite cannot
        # bind (Programming, Interface). Anything else (locked, busy, I/O error, disk full,
        # read-only, corrupt file, no such table) is the database's.
        return not isinstance(
            error, sqlite3.IntegrityError | sqlite3.DataError | sqlite3.ProgrammingError | sqlite3.InterfaceError
        )
    psycopg = sys.modules.get("psycopg")  # only loaded when a PostgreSQL ledger is in use
    if psycopg is not None and isinstance(error, psycopg.Error):
        # The rows' fault: a value (Data: NUL, out of range, bad JSON), a constraint (Integrity), an
        # index entry too big for a page (ProgramLimitExceeded: a user id of a few thousand bytes).
        # Anything else (connection lost, timeouts, shutdown, read-only after a fail-over,
        # permissions, a dropped table) is the database's.
        row_errors = psycopg.DataError | psycopg.IntegrityError | psycopg.errors.ProgramLimitExceeded
        return not isinstance(error, row_errors)
    return not isinstance(error, TypeError | ValueError | OverflowError)


def connect(url: str | LedgerURL, *, timeout_s: float = 5.0) -> Database:
    """Open and migrate the ledger database a URL names."""
    parsed = url if isinstance(url, LedgerURL) else parse_ledger_url(url)
    if parsed.kind == "postgresql":
        from ._postgres import PostgresDatabase

        return PostgresDatabase(parsed, timeout_s=timeout_s)
    from ._sqlite import SQLiteDatabase

    return SQLiteDatabase(parsed, timeout_s=timeout_s)
