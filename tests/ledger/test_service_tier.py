"""The ledger keeps the service tier a call was served at (OpenAI's flex and priority, Anthropic's
batch and priority are priced apart): written from the call, reported and exported by it, added to
a ledger made by an earlier version (its rows kept, with no tier) and read from an earlier
version's spool."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from psycopg import sql

import genai_meter
from genai_meter._runtime import configure, get_runtime
from genai_meter.ledger import LedgerWriter, _postgres, _sqlite, open_ledger
from genai_meter.ledger._rows import COLUMNS, RowMaker
from genai_meter.ledger._spool import Spool, parse_line

from ..conftest import Telemetry, fake_provider_settings
from ..openai.test_chat import MESSAGES, client
from ._cli import run_cli
from ._records import kinds
from .conftest import PG_BASE

CHAT_USAGE = {"prompt_tokens": 1000, "completion_tokens": 500}


def test_a_call_served_at_flex_has_its_tier_in_the_ledger(
    telemetry: Telemetry, fake_provider: Any, sqlite_url: str
) -> None:
    configure(**fake_provider_settings(fake_provider, ledger_url=sqlite_url))
    sdk = client(fake_provider)
    headers = {"x-fake-usage": json.dumps(CHAT_USAGE)}
    with genai_meter.attribute(user="u-flex"):
        sdk.chat.completions.create(model="gpt-5-mini", messages=MESSAGES, service_tier="flex", extra_headers=headers)
        sdk.chat.completions.create(model="gpt-5-mini", messages=MESSAGES, extra_headers=headers)
    ledger = get_runtime().ledger
    assert ledger is not None and ledger.flush(10)
    with open_ledger(sqlite_url) as read:
        rows = list(read.export())
        by_tier = {r.as_dict()["service_tier"]: r.as_dict() for r in read.report(group_by=["service_tier"])}
    assert [row["service_tier"] for row in rows] == ["flex", "default"]  # (what OpenAI answers unasked)
    # flex is half of gpt-5-mini's standard $0.25 / $2.00 per million: 1,000 in and 500 out
    assert rows[0]["cost_usd"] == pytest.approx((1000 * 0.125 + 500 * 1.0) / 1e6, abs=1e-12)
    assert rows[1]["cost_usd"] == pytest.approx((1000 * 0.25 + 500 * 2.0) / 1e6, abs=1e-12)
    assert by_tier["flex"]["calls"] == 1 and by_tier["default"]["calls"] == 1


def test_reports_group_and_filter_by_service_tier(ledger_url: str, spool_path: Path) -> None:
    with LedgerWriter(ledger_url, spool_path=spool_path) as writer:
        for record in kinds():
            writer.submit(record)
    with open_ledger(ledger_url) as ledger:
        grouped = [
            (r.as_dict()["service_tier"], r.as_dict()["calls"]) for r in ledger.report(group_by=["service_tier"])
        ]
        flex = [row["call_key"] for row in ledger.export(filters={"service_tier": ["flex"]})]
    assert sorted(grouped, key=lambda pair: str(pair[0])) == [(None, len(kinds()) - 1), ("flex", 1)]
    assert flex == ["chatcmpl-1"]


def _fill_schema_1(execute: Any, migrations: tuple[str, ...], placeholder: str) -> None:
    """A ledger as genai-meter made it before the tier column (schema 1), with one row."""
    for statement in migrations:
        execute(statement)
    execute("CREATE TABLE genai_meter_schema_version (version INTEGER NOT NULL)")
    execute("INSERT INTO genai_meter_schema_version VALUES (1)")
    old_columns = COLUMNS[:-1]
    values = ", ".join(placeholder for _ in old_columns)
    row = RowMaker().row(kinds()[1])[:-1]
    execute(f"INSERT INTO genai_meter_calls ({', '.join(old_columns)}) VALUES ({values})", row)


def _schema_1(url: str) -> None:
    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url[len("sqlite:///") :], isolation_level=None)) as conn:
            _fill_schema_1(conn.execute, _sqlite.MIGRATIONS[0], "?")
        return
    schema = parse_qs(urlsplit(url).query)["schema"][0]
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        _fill_schema_1(conn.execute, _postgres.MIGRATIONS[0], "%s")


def test_a_ledger_of_schema_1_gains_the_column_and_keeps_its_rows(ledger_url: str, spool_path: Path) -> None:
    _schema_1(ledger_url)
    with LedgerWriter(ledger_url, spool_path=spool_path) as writer:
        writer.submit(kinds()[0])
    with open_ledger(ledger_url) as ledger:
        assert ledger.db.schema_version() == 2
        rows = {row["call_key"]: row for row in ledger.export()}
    assert set(rows) == {"chatcmpl-1", "msg_2"}
    assert rows["msg_2"]["service_tier"] is None and rows["msg_2"]["input_tokens"] == 5000
    assert rows["chatcmpl-1"]["service_tier"] == "flex"


def test_a_spool_written_before_the_column_is_replayed(sqlite_url: str, tmp_path: Path) -> None:
    """A row spooled by the version before the tier column (one value fewer) is stored, tier unset;
    a row of any other width is still refused with a message that says so."""
    old_row = list(RowMaker().row(kinds()[1])[:-1])
    assert parse_line(json.dumps(old_row).encode())[-1] is None
    with pytest.raises(ValueError, match=f"a ledger row has {len(COLUMNS)} values, not {len(COLUMNS) - 2}"):
        parse_line(json.dumps(old_row[:-1]).encode())
    spool = Spool(tmp_path / "old.jsonl")
    (tmp_path / "old.jsonl").write_text(json.dumps(old_row) + "\n")
    with open_ledger(sqlite_url) as ledger:
        written = spool.replay(ledger.db.insert_rows, reject=lambda _line, error: pytest.fail(str(error)))
        assert written == 1
        [row] = list(ledger.export())
    assert row["call_key"] == "msg_2" and row["service_tier"] is None


def test_the_cli_groups_and_filters_by_service_tier(
    sqlite_url: str, spool_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with LedgerWriter(sqlite_url, spool_path=spool_path) as writer:
        for record in kinds():
            writer.submit(record)
    code, out, _ = run_cli(["report", "--ledger", sqlite_url, "-g", "service_tier", "-f", "json"], capsys)
    assert code == 0
    assert [(r["service_tier"], r["calls"]) for r in json.loads(out)] == [(None, len(kinds()) - 1), ("flex", 1)]
    code, out, _ = run_cli(["export", "--ledger", sqlite_url, "-f", "jsonl", "--service-tier", "flex"], capsys)
    assert code == 0
    assert [(row["call_key"], row["service_tier"]) for row in map(json.loads, out.splitlines())] == [
        ("chatcmpl-1", "flex")
    ]
