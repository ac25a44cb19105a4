"""Fixtures for the ledger tests: a fresh SQLite file, and a fresh schema on the real PostgreSQL.

Each PostgreSQL test gets its own schema (`schema=` URL parameter) so parallel runs never collide;
it is dropped afterwards. Outside CI an unreachable PostgreSQL skips; in CI (CI=true) it fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_BASE = os.environ.get("GENAI_METER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_admin() -> object:
    import psycopg

    try:
        return psycopg.connect(PG_BASE, connect_timeout=3, autocommit=True)
    except psycopg.Error as exc:
        message = f"PostgreSQL not reachable at {PG_BASE}: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def pg_schema() -> Iterator[str]:
    from psycopg import sql

    admin = _pg_admin()
    schema = f"gm_test_{uuid.uuid4().hex[:12]}"
    try:
        yield schema
    finally:
        admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))  # type: ignore[attr-defined]
        admin.close()  # type: ignore[attr-defined]


@pytest.fixture
def pg_url(pg_schema: str) -> str:
    return f"{PG_BASE}?schema={pg_schema}"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.sqlite3'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def spool_path(tmp_path: Path) -> Path:
    return tmp_path / "spool.jsonl"
