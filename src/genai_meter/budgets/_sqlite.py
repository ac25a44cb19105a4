"""Spend in a SQLite file, shared by the processes of one host.

`BEGIN IMMEDIATE` takes the write lock before reading, so check-and-reserve is atomic across
processes; WAL mode lets readers (status, the CLI) go on meanwhile.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any

from genai_meter._fork import reset_in_child
from genai_meter._sqlite_wal import connect_wal
from genai_meter.budgets._store import RECENT_COSTS, StoreUnavailable, refusal
from genai_meter.budgets._types import Blocked, Counters, Reservation, Target

_SCHEMA = """
CREATE TABLE IF NOT EXISTS budget_counters (
    key TEXT PRIMARY KEY,
    spend INTEGER NOT NULL DEFAULT 0,
    reserved INTEGER NOT NULL DEFAULT 0,
    requests INTEGER NOT NULL DEFAULT 0,
    tokens INTEGER NOT NULL DEFAULT 0,
    fired TEXT NOT NULL DEFAULT '',
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS budget_recent (key TEXT PRIMARY KEY, costs TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS budget_blocked (
    kind TEXT NOT NULL, value TEXT NOT NULL, reason TEXT NOT NULL, PRIMARY KEY (kind, value)
);
"""
_PURGE_EVERY = 4096
# Connections a forked child inherited: held, never used nor closed (see `SQLiteStore._after_fork`).
_inherited: list[sqlite3.Connection] = []


class SQLiteStore:
    def __init__(self, path: str, now: Callable[[], float], *, timeout_s: float = 5.0) -> None:
        self._path = path
        self._now = now
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._writes = 0
        reset_in_child(self, SQLiteStore._after_fork)

    def _after_fork(self) -> None:
        # A forked child: the lock may have been held by a thread that is not here, and a SQLite
        # connection must not be used across fork(). The child opens its own; the parent's is kept
        # (never closed here: closing it could checkpoint or remove the WAL the parent still uses).
        self._lock = threading.Lock()
        if self._conn is not None:
            _inherited.append(self._conn)
            self._conn = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                folder = os.path.dirname(self._path)
                if folder:
                    os.makedirs(folder, exist_ok=True)
                conn = connect_wal(self._path, self._timeout_s)
                conn.executescript(_SCHEMA)
            except (sqlite3.Error, OSError) as error:
                raise StoreUnavailable(f"SQLite budget store {self._path}: {error}") from error
            self._conn = conn
        return self._conn

    def _row(self, conn: sqlite3.Connection, key: str) -> tuple[int, int, int, int, str]:
        row = conn.execute(
            "SELECT spend, reserved, requests, tokens, fired FROM budget_counters WHERE key = ?", (key,)
        ).fetchone()
        return (0, 0, 0, 0, "") if row is None else row

    def _write(
        self, conn: sqlite3.Connection, key: str, target: Target, values: tuple[int, int, int, int, str]
    ) -> None:
        conn.execute(
            "INSERT INTO budget_counters (key, spend, reserved, requests, tokens, fired, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET spend = excluded.spend,"
            " reserved = excluded.reserved, requests = excluded.requests, tokens = excluded.tokens,"
            " fired = excluded.fired, expires_at = excluded.expires_at",
            (key, *values, self._now() + target.ttl),
        )

    def _transaction(self) -> sqlite3.Connection:
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise StoreUnavailable(f"SQLite budget store {self._path}: {error}") from error
        return conn

    def reserve(
        self, targets: Sequence[Target], keys: Sequence[str], estimate: int, reservation_id: str
    ) -> Blocked | None:
        with self._lock:
            conn = self._transaction()
            try:
                rows = [self._row(conn, key) for key in keys]
                for index, target in enumerate(targets):
                    spend, reserved, requests, tokens, fired = rows[index]
                    why = (
                        refusal(target, spend, reserved, requests, tokens, estimate) if target.hard else None
                    )
                    if why is not None:
                        claimed = False
                        if why == "usd" and target.block_field and target.block_field not in fired.split(","):
                            claimed = True
                            self._write(
                                conn,
                                keys[index],
                                target,
                                (spend, reserved, requests, tokens, _add(fired, target.block_field)),
                            )
                        conn.execute("COMMIT")
                        return Blocked(index, why, spend, reserved, requests, tokens, claimed)
                for key, target, (spend, reserved, requests, tokens, fired) in zip(
                    keys, targets, rows, strict=True
                ):
                    self._write(conn, key, target, (spend, reserved + estimate, requests + 1, tokens, fired))
                self._writes += 1
                if self._writes % _PURGE_EVERY == 0:
                    conn.execute("DELETE FROM budget_counters WHERE expires_at < ?", (self._now(),))
                conn.execute("COMMIT")
            except sqlite3.Error as error:
                _rollback(conn)
                raise StoreUnavailable(f"SQLite budget store {self._path}: {error}") from error
        return None

    def settle(self, reservation: Reservation, actual: int, tokens: int) -> tuple[list[int], list[tuple[int, int]]]:
        targets, keys, estimate, held = reservation.targets, reservation.keys, reservation.estimate, reservation.held
        spends: list[int] = []
        fired_now: list[tuple[int, int]] = []
        with self._lock:
            conn = self._transaction()
            try:
                for index, (key, target) in enumerate(zip(keys, targets, strict=True)):
                    spend, reserved, requests, used, fired = self._row(conn, key)
                    if held:
                        reserved = max(0, reserved - estimate)
                    else:
                        requests += 1
                    if actual >= 0:
                        spend += actual
                        claimed = fired.split(",")
                        for j, amount in enumerate(target.amounts):
                            if spend >= amount and target.fields[j] not in claimed:
                                fired = _add(fired, target.fields[j])
                                fired_now.append((index, j))
                        self._push_recent(conn, target.recent_key, actual)
                    self._write(conn, key, target, (spend, reserved, requests, used + tokens, fired))
                    spends.append(spend)
                conn.execute("COMMIT")
            except sqlite3.Error as error:
                _rollback(conn)
                raise StoreUnavailable(f"SQLite budget store {self._path}: {error}") from error
        return spends, fired_now

    def _push_recent(self, conn: sqlite3.Connection, key: str, cost: int) -> None:
        row = conn.execute("SELECT costs FROM budget_recent WHERE key = ?", (key,)).fetchone()
        costs = ([] if row is None or not row[0] else row[0].split(","))[-(RECENT_COSTS - 1) :]
        costs.append(str(cost))
        conn.execute(
            "INSERT INTO budget_recent (key, costs) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET costs = excluded.costs",
            (key, ",".join(costs)),
        )

    def _query(self, sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._connect().execute(sql, params).fetchall()
            except sqlite3.Error as error:
                raise StoreUnavailable(f"SQLite budget store {self._path}: {error}") from error

    def read(self, key: str) -> Counters:
        rows = self._query(
            "SELECT spend, reserved, requests, tokens, fired FROM budget_counters WHERE key = ?", (key,)
        )
        if not rows:
            return Counters()
        spend, reserved, requests, tokens, fired = rows[0]
        return Counters(
            int(spend),
            int(reserved),
            int(requests),
            int(tokens),
            tuple(sorted(filter(None, str(fired).split(",")))),
        )

    def recent(self, recent_key: str) -> list[int]:
        rows = self._query("SELECT costs FROM budget_recent WHERE key = ?", (recent_key,))
        return [int(item) for item in str(rows[0][0]).split(",") if item] if rows else []

    def blocked(self) -> dict[tuple[str, str], str]:
        return {
            (str(k), str(v)): str(r)
            for k, v, r in self._query("SELECT kind, value, reason FROM budget_blocked", ())
        }

    def block(self, kind: str, value: str, reason: str) -> None:
        self._query(
            "INSERT INTO budget_blocked (kind, value, reason) VALUES (?, ?, ?)"
            " ON CONFLICT(kind, value) DO UPDATE SET reason = excluded.reason",
            (kind, value, reason),
        )

    def unblock(self, kind: str, value: str) -> bool:
        with self._lock:
            try:
                cursor = self._connect().execute(
                    "DELETE FROM budget_blocked WHERE kind = ? AND value = ?", (kind, value)
                )
                return cursor.rowcount > 0
            except sqlite3.Error as error:
                raise StoreUnavailable(f"SQLite budget store {self._path}: {error}") from error

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _add(fired: str, field: str) -> str:
    return f"{fired},{field}" if fired else field


def _rollback(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass
