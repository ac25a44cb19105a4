"""PostgreSQL backend (psycopg 3), for ledgers shared by many processes and hosts.

All of PostgreSQL's SQL lives here. Idempotency is `ON CONFLICT DO NOTHING` against a unique
(provider, call_key) constraint; migrations run under an advisory lock so processes starting
together migrate once. A `schema=` URL parameter places the tables in their own schema.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from itertools import count
from typing import Any

from .._redact import safe_parser_message
from ._backend import CALLS_TABLE, LINES_TABLE, RUNS_TABLE, VERSION_TABLE, Database
from ._errors import LedgerUnavailable
from ._rows import COLUMNS, Row
from ._url import LedgerURL

_COVERED = "ts, day, cost_usd, input_tokens, output_tokens"
_MIGRATION_LOCK = 0x67656E6169  # "genai": one advisory lock id for every genai-meter ledger

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        f"""CREATE TABLE {CALLS_TABLE} (
            id BIGSERIAL PRIMARY KEY,
            call_key TEXT NOT NULL,
            ts DOUBLE PRECISION NOT NULL,
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
            input_tokens BIGINT NOT NULL DEFAULT 0,
            output_tokens BIGINT NOT NULL DEFAULT 0,
            cache_read_tokens BIGINT NOT NULL DEFAULT 0,
            cache_write_tokens BIGINT NOT NULL DEFAULT 0,
            reasoning_tokens BIGINT NOT NULL DEFAULT 0,
            usage_estimated BOOLEAN NOT NULL DEFAULT FALSE,
            cost_input_usd DOUBLE PRECISION,
            cost_cache_read_usd DOUBLE PRECISION,
            cost_cache_write_usd DOUBLE PRECISION,
            cost_output_usd DOUBLE PRECISION,
            cost_usd DOUBLE PRECISION,
            cost_source TEXT,
            pricing_version TEXT,
            latency_s DOUBLE PRECISION NOT NULL DEFAULT 0,
            stream BOOLEAN NOT NULL DEFAULT FALSE,
            outcome TEXT NOT NULL,
            error_type TEXT,
            trace_id TEXT,
            span_id TEXT,
            metadata JSONB,
            CONSTRAINT {CALLS_TABLE}_key UNIQUE (provider, call_key)
        )""",
        f"CREATE INDEX {CALLS_TABLE}_ts ON {CALLS_TABLE} ({_COVERED})",
        f"CREATE INDEX {CALLS_TABLE}_user ON {CALLS_TABLE} (user_id, {_COVERED})",
        f"CREATE INDEX {CALLS_TABLE}_tenant ON {CALLS_TABLE} (tenant, {_COVERED})",
        f"CREATE INDEX {CALLS_TABLE}_feature ON {CALLS_TABLE} (feature, {_COVERED})",
        f"CREATE INDEX {CALLS_TABLE}_model ON {CALLS_TABLE} (model, {_COVERED})",
        f"""CREATE TABLE {RUNS_TABLE} (
            id BIGSERIAL PRIMARY KEY,
            run_at DOUBLE PRECISION NOT NULL,
            provider TEXT NOT NULL,
            source TEXT NOT NULL,
            since_day TEXT NOT NULL,
            until_day TEXT NOT NULL,
            threshold_usd DOUBLE PRECISION NOT NULL,
            threshold_tokens BIGINT NOT NULL,
            lines INTEGER NOT NULL,
            mismatches INTEGER NOT NULL,
            ledger_cost_usd DOUBLE PRECISION NOT NULL,
            provider_cost_usd DOUBLE PRECISION,
            ok BOOLEAN NOT NULL
        )""",
        f"""CREATE TABLE {LINES_TABLE} (
            run_id BIGINT NOT NULL REFERENCES {RUNS_TABLE} (id) ON DELETE CASCADE,
            day TEXT NOT NULL,
            model TEXT NOT NULL,
            scope TEXT NOT NULL DEFAULT '',
            measure TEXT NOT NULL,
            ledger_value DOUBLE PRECISION NOT NULL,
            provider_value DOUBLE PRECISION NOT NULL,
            difference DOUBLE PRECISION NOT NULL,
            mismatch BOOLEAN NOT NULL
        )""",
        f"CREATE INDEX {LINES_TABLE}_run ON {LINES_TABLE} (run_id)",
    ),
    (f"ALTER TABLE {CALLS_TABLE} ADD COLUMN service_tier TEXT",),  # 2: the tier a call was served at
)
SCHEMA_VERSION = len(MIGRATIONS)

_INSERT = (
    f"INSERT INTO {CALLS_TABLE} ({', '.join(COLUMNS)}) VALUES ("
    + ", ".join("%s::jsonb" if name == "metadata" else "%s" for name in COLUMNS)
    + ") ON CONFLICT (provider, call_key) DO NOTHING"
)
_cursor_names = count(1)


class PostgresDatabase(Database):
    kind = "postgresql"
    placeholder = "%s"

    def __init__(self, url: LedgerURL, *, timeout_s: float = 5.0) -> None:
        try:
            import psycopg
            from psycopg import sql
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise LedgerUnavailable("PostgreSQL ledger needs psycopg 3: pip install 'genai-meter[postgres]'") from exc
        self._psycopg = psycopg
        self.description = url.redacted()
        timeout_ms = max(int(timeout_s * 1000), 1)
        try:
            self._conn = psycopg.connect(
                url.target,
                connect_timeout=max(int(timeout_s + 0.999), 1),
                options=f"-c statement_timeout={timeout_ms} -c lock_timeout={timeout_ms}",
            )
            if url.schema:
                with self._conn.cursor() as cur:
                    cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(url.schema)))
                    cur.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(url.schema)))
                self._conn.commit()
            self._migrate()
        except psycopg.Error as exc:
            message = safe_parser_message(url.target, str(exc))  # (libpq may quote the URL's parts)
            raise LedgerUnavailable(f"cannot open PostgreSQL ledger {self.description}: {message}") from exc

    def _migrate(self) -> None:
        conn = self._conn
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            cur.execute(f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version INTEGER NOT NULL)")
            cur.execute(f"SELECT max(version) FROM {VERSION_TABLE}")
            row = cur.fetchone()
            current = int(row[0] or 0) if row else 0
            if current >= SCHEMA_VERSION:
                return
            for statements in MIGRATIONS[current:]:
                for statement in statements:
                    cur.execute(statement)
            cur.execute(f"DELETE FROM {VERSION_TABLE}")
            cur.execute(f"INSERT INTO {VERSION_TABLE} (version) VALUES (%s)", (SCHEMA_VERSION,))

    def schema_version(self) -> int:
        rows = self.fetch_all(f"SELECT max(version) FROM {VERSION_TABLE}")
        return int(rows[0][0] or 0)

    def insert_rows(self, rows: Sequence[Row]) -> int:
        conn = self._conn
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(_INSERT, rows)
            return max(int(cur.rowcount), 0)

    def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._conn.transaction(), self._conn.cursor() as cur:
            cur.execute(sql, tuple(params))
            return list(cur.fetchall())

    def stream(self, sql: str, params: Sequence[Any] = (), chunk: int = 2000) -> Generator[tuple[Any, ...], None, None]:
        # A named (server-side) cursor: rows come over in chunks, so memory stays flat.
        with self._conn.transaction(), self._conn.cursor(name=f"genai_meter_{next(_cursor_names)}") as cur:
            cur.itersize = chunk
            cur.execute(sql, tuple(params))
            yield from cur

    def save_run(self, run: dict[str, Any], lines: Sequence[dict[str, Any]]) -> int:
        conn = self._conn
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(
                f"INSERT INTO {RUNS_TABLE} ({', '.join(run)}) VALUES ({', '.join('%s' for _ in run)}) RETURNING id",
                tuple(run.values()),
            )
            row = cur.fetchone()
            run_id = int(row[0]) if row else 0
            if lines:
                names = ["run_id", *lines[0]]
                marks = ", ".join("%s" for _ in names)
                cur.executemany(
                    f"INSERT INTO {LINES_TABLE} ({', '.join(names)}) VALUES ({marks})",
                    [(run_id, *line.values()) for line in lines],
                )
        return run_id

    def week_start(self, day_column: str) -> str:
        return f"to_char(date_trunc('week', ({day_column})::date), 'YYYY-MM-DD')"

    def close(self) -> None:
        try:
            self._conn.close()
        except Exception:
            pass
