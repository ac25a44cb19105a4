"""SQLite and PostgreSQL report the same figures for the same rows, to the last digit."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from genai_meter._record import CallRecord
from genai_meter.ledger import LedgerWriter, open_ledger, project

from ._cli import run_cli
from ._records import DAY1

NOW = datetime(2026, 1, 20, 12, tzinfo=timezone.utc)
USERS = ["alice", "bob", "=evil", "ünï", None, "o'brien", "100%", "a_b"]


def _records() -> list[CallRecord]:
    """200 calls, one every 3 hours, cost i x $0.000123 (every 17th unpriced, every 23rd failed):
    sums of these floats come out differently in the last bit depending on the order they are added."""
    return [
        CallRecord(
            time=DAY1 + i * 3 * 3600,
            provider="openai" if i % 3 else "anthropic",
            operation="chat",
            request_model="m",
            response_model=f"m-{i % 4}",
            response_id=f"r{i}",
            user=USERS[i % len(USERS)],
            tenant=["acme", None][i % 2],
            feature="f",
            input_tokens=i * 7,
            output_tokens=i,
            cost_usd=None if i % 17 == 0 else i * 0.000123,
            outcome="error" if i % 23 == 0 else "ok",
        )
        for i in range(200)
    ]


def _fill(url: str, spool: Path) -> None:
    with LedgerWriter(url, spool_path=spool) as writer:
        for record in _records():
            writer.submit(record)


def _figures(url: str) -> dict[str, Any]:
    with open_ledger(url) as ledger:
        filters = {"user": ["100%", "(none)", "a_b"]}
        return {
            "filtered": [r.as_dict() for r in ledger.report(group_by=["user"], filters=filters)],
            "totals": ledger.figures().as_dict(),
            "by_user_week": [r.as_dict() for r in ledger.report(group_by=["user"], period="week")],
            "by_model_top": [r.as_dict() for r in ledger.report(group_by=["model"], period="month", top=2)],
            "daily": ledger.daily_costs(scope="tenant", since="2026-01-01"),
            "reconcile": ledger.usage_by_day_model("openai", "2026-01-01", "2026-02-01"),
            "projection": [p.as_dict() for p in project(ledger, {"*": 1.0}, scope="user", now=NOW)],
        }


def test_sqlite_and_postgres_report_identical_figures(
    sqlite_url: str, pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(sqlite_url, tmp_path / "sqlite.spool")
    _fill(pg_url, tmp_path / "pg.spool")
    on_sqlite, on_postgres = _figures(sqlite_url), _figures(pg_url)
    assert on_sqlite == on_postgres
    # Summed in another order, PostgreSQL used to give 0.30110400000000004 for user 100%.
    assert on_sqlite["filtered"] == [
        {
            "user": "a_b",
            "calls": 25,
            "input_tokens": 18025,
            "output_tokens": 2575,
            "cost_usd": 0.302088,
            "calls_without_cost": 1,
        },
        {
            "user": "100%",
            "calls": 25,
            "input_tokens": 17850,
            "output_tokens": 2550,
            "cost_usd": 0.301104,
            "calls_without_cost": 1,
        },
        {
            "user": None,
            "calls": 25,
            "input_tokens": 17500,
            "output_tokens": 2500,
            "cost_usd": 0.299136,
            "calls_without_cost": 1,
        },
    ]
    argv = ["report", "-g", "user", "--user", "100%", "--user", "(none)", "--user", "a_b", "-f", "json"]
    outputs = [run_cli([*argv, "--ledger", url], capsys) for url in (sqlite_url, pg_url)]
    assert outputs[0] == outputs[1]
    assert '"cost_usd": 0.301104,' in outputs[0][1]
