"""Reports, totals, export and projection, through the Python API and the CLI."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from genai_meter._attribution import Pseudonymizer
from genai_meter._record import CallRecord
from genai_meter.ledger import LedgerWriter, QueryError, open_ledger, project

from ._cli import run_cli
from ._records import DAY1, expected_rows, kinds, many


def _fill(url: str, spool: Path) -> None:
    with LedgerWriter(url, spool_path=spool) as writer:
        for record in kinds():
            writer.submit(record)


def test_report_grouped_by_user(ledger_url: str, spool_path: Path) -> None:
    _fill(ledger_url, spool_path)
    with open_ledger(ledger_url) as ledger:
        rows = [r.as_dict() for r in ledger.report(group_by=["user"])]
    assert rows == [
        {
            "user": "bob",
            "calls": 1,
            "input_tokens": 5000,
            "output_tokens": 800,
            "cost_usd": 0.01965,
            "calls_without_cost": 0,
        },
        {
            "user": "alice",
            "calls": 2,
            "input_tokens": 1100,
            "output_tokens": 210,
            "cost_usd": 0.0045,
            "calls_without_cost": 1,
        },
        {"user": "carol", "calls": 2, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0, "calls_without_cost": 2},
    ]


def test_report_by_day_tenant_filters_and_top(ledger_url: str, spool_path: Path) -> None:
    _fill(ledger_url, spool_path)
    with open_ledger(ledger_url) as ledger:
        by_day = [r.as_dict() for r in ledger.report(group_by=["tenant"], period="day")]
        assert [(r["day"], r["tenant"], r["calls"]) for r in by_day] == [
            ("2026-01-01", "acme", 2),
            ("2026-01-02", "beta", 3),
        ]
        assert by_day[0]["cost_usd"] == pytest.approx(0.02415, abs=1e-12)
        top = ledger.report(group_by=["model"], top=1, filters={"provider": "openai"})
        assert [(r.keys["model"], r.figures.calls) for r in top] == [("gpt-4o-2024-08-06", 1)]
        none_feature = ledger.report(group_by=["user"], filters={"feature": "(none)"})
        assert [(r.keys["user"], r.figures.calls) for r in none_feature] == [("alice", 1)]
        week = ledger.report(group_by=[], period="week")
        assert [(r.keys["week"], r.figures.calls) for r in week] == [("2025-12-29", 5)]
        month = ledger.report(group_by=["provider"], period="month", since="2026-01-02")
        assert [(r.keys["month"], r.keys["provider"], r.figures.calls) for r in month] == [("2026-01", "openai", 3)]
        per_day_top = ledger.report(group_by=["user"], period="day", top=1, order_by="calls")
        assert [(r.keys["day"], r.keys["user"]) for r in per_day_top] == [
            ("2026-01-01", "alice"),
            ("2026-01-02", "carol"),
        ]
        with pytest.raises(QueryError, match="unknown group 'user_id; drop table'"):
            ledger.report(group_by=["user_id; drop table"])
        with pytest.raises(QueryError, match="since: 'yesterdayish' is not a date"):
            ledger.report(since="yesterdayish")
        # A filter value is a bound parameter, never SQL.
        assert ledger.report(filters={"user": "x' OR '1'='1"}) == []


def test_totals(sqlite_url: str, spool_path: Path) -> None:
    _fill(sqlite_url, spool_path)
    with open_ledger(sqlite_url) as ledger:
        totals = ledger.totals(now=datetime(2026, 1, 2, 12, tzinfo=timezone.utc))
    assert totals["today"].calls == 3
    assert totals["month"].calls == 5
    assert totals["all_time"].cost_usd == pytest.approx(0.02415, abs=1e-12)
    assert totals["all_time"].calls_without_cost == 3


def test_cli_report_json_csv_and_errors(sqlite_url: str, spool_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fill(sqlite_url, spool_path)
    code, out, _ = run_cli(["report", "--ledger", sqlite_url, "-g", "tenant", "-f", "json"], capsys)
    assert code == 0
    assert [(r["tenant"], r["calls"]) for r in json.loads(out)] == [("acme", 2), ("beta", 3)]
    code, out, _ = run_cli(["report", "--ledger", sqlite_url, "-g", "user,feature", "--top", "1", "-f", "csv"], capsys)
    assert list(csv.reader(io.StringIO(out))) == [
        ["user", "feature", "calls", "input_tokens", "output_tokens", "cost_usd", "calls_without_cost"],
        ["bob", "chat", "1", "5000", "800", "0.01965", "0"],
    ]
    code, out, _ = run_cli(["report", "--ledger", sqlite_url], capsys)
    assert code == 0 and out.splitlines()[0].split() == [
        "period",
        "calls",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "calls_without_cost",
    ]
    assert run_cli(["report", "--ledger", sqlite_url, "--since", "2026-13-01"], capsys)[2] == (
        "genai-meter report: since: '2026-13-01' is not a date (YYYY-MM-DD, ISO date-time, today, yesterday or Nd)\n"
    )
    code, _, err = run_cli(["report", "--ledger", sqlite_url, "-g", "colour"], capsys)
    assert code == 2 and "unknown group 'colour'" in err
    code, _, err = run_cli(["report", "--ledger", "postgresql://postgres@127.0.0.1:1/test"], capsys)
    assert code == 2 and err.startswith("genai-meter report: cannot open PostgreSQL ledger")
    code, _, err = run_cli(["report", "--ledger", str(spool_path.parent / "missing.db")], capsys)
    assert code == 2 and "no ledger at" in err


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_cli_export(
    fmt: str, ledger_url: str, spool_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(ledger_url, spool_path)
    out_file = tmp_path / f"out.{fmt}"
    code, _, _ = run_cli(
        [
            "export",
            "--ledger",
            ledger_url,
            "-f",
            fmt,
            "-o",
            str(out_file),
            "--since",
            "2026-01-01",
            "--until",
            "2026-01-02",
        ],
        capsys,
    )
    assert code == 0
    text = out_file.read_text()
    expected = expected_rows()[:2]
    if fmt == "jsonl":
        assert [json.loads(line) for line in text.splitlines()] == expected
    elif fmt == "json":
        assert json.loads(text) == expected
    else:
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [r["call_key"] for r in rows] == ["chatcmpl-1", "msg_2"]
        assert rows[0]["cost_usd"] == "0.0045" and rows[0]["user_id"] == "alice" and rows[1]["user_id"] == "bob"
        assert json.loads(rows[0]["metadata"]) == expected[0]["metadata"]
        assert rows[1]["stream"] == "True" and rows[1]["metadata"] == ""


def test_projection(sqlite_url: str, spool_path: Path) -> None:
    # Calls up to 2026-01-10 12:00, 7 users, cost (i % 5 + 1)/1000 each, one a minute from 2026-01-01.
    with LedgerWriter(sqlite_url, spool_path=spool_path) as writer:
        for record in many(13680):  # 9.5 days: up to "now"
            writer.submit(record)
    now = datetime(2026, 1, 10, 12, tzinfo=timezone.utc)
    with open_ledger(sqlite_url) as ledger:
        [overall] = project(ledger, {"month": 50.0}, now=now)
        per_user = project(ledger, {"u0": 5.0, "*": 100.0}, scope="user", now=now)
        [not_reached] = project(ledger, {"month": 200.0}, now=now)
        [far] = project(ledger, {"month": 1e12}, now=now)
        for limits, window, message in [
            ({"month": float("nan")}, 7, "budget 'month' [(]USD[)]: nan is not a finite number >= 0"),
            ({"month": float("inf")}, 7, "budget 'month' [(]USD[)]: inf is not a finite number >= 0"),
            ({}, 100_000_000, "window_days: 100000000 is not a whole number from 1 to 3660"),
        ]:
            with pytest.raises(QueryError, match=message):
                project(ledger, limits, window_days=window, now=now)
    # Each day has 1440 calls; every 5 consecutive calls cost 0.015, so a day costs 4.32.
    assert overall.month_to_date_usd == pytest.approx(4.32 * 9.5, abs=1e-9)  # 9 days + half of day 10
    assert overall.daily_rate_usd == pytest.approx(4.32, abs=1e-9)  # mean of Jan 3..9
    assert overall.projected_month_end_usd == pytest.approx(4.32 * 9.5 + 4.32 * 21.5, abs=1e-9)
    assert overall.runs_out_on is not None and overall.runs_out_on.isoformat() == "2026-01-12"
    assert not overall.exhausted and overall.budget_status == "runs_out"
    # $158.96 left at $4.32 a day lasts 36.8 days, past the month's 21.5: not reached this month (the
    # monthly budget starts again), rather than a date next month or centuries away.
    assert (not_reached.runs_out_on, not_reached.exhausted, not_reached.budget_status) == (None, False, "not_reached")
    assert (far.runs_out_on, far.budget_status) == (None, "not_reached")
    assert far.as_dict()["budget_status"] == "not_reached" and far.as_dict()["runs_out_on"] is None
    u0 = next(p for p in per_user if p.value == "u0")
    assert u0.limit_usd == 5.0 and u0.exhausted and u0.runs_out_on is not None
    assert u0.budget_status == "exhausted"
    others = [p for p in per_user if p.value != "u0"]
    assert len(others) == 6 and all(p.limit_usd == 100.0 and not p.exhausted for p in others)
    with open_ledger(sqlite_url) as ledger, pytest.raises(QueryError, match="scope global takes one budget"):
        project(ledger, {"a": 1.0, "b": 2.0}, now=now)


def test_cli_project(sqlite_url: str, spool_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fill(sqlite_url, spool_path)
    code, out, _ = run_cli(
        ["project", "--ledger", sqlite_url, "--scope", "tenant", "--budget", "acme=10", "-f", "json"], capsys
    )
    assert code == 0
    assert {r["value"] for r in json.loads(out)} >= {"acme"}
    code, _, err = run_cli(["project", "--ledger", sqlite_url, "--budget", "acme=lots"], capsys)
    assert code == 2 and "'lots' is not a number of USD" in err


def test_cli_project_refuses_a_date_range(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A projection reads the month so far and the --window-days before today: a --since or --until
    would change nothing, so it is refused by name instead of ignored."""
    for option in ("--since", "--until"):
        with pytest.raises(SystemExit) as refused:
            run_cli(["project", "--ledger", sqlite_url, option, "7d"], capsys)
        assert refused.value.code == 2
        assert f"unrecognized arguments: {option} 7d" in capsys.readouterr().err


def test_day_is_utc(sqlite_url: str, spool_path: Path) -> None:
    record = many(1)[0]
    record.time = DAY1 - 0.5  # 2025-12-31T23:59:59.5Z
    with LedgerWriter(sqlite_url, spool_path=spool_path) as writer:
        writer.submit(record)
    with open_ledger(sqlite_url) as ledger:
        assert next(ledger.export())["day"] == "2025-12-31"


def _projected_limits(
    sqlite_url: str, scope: str, config: Path, text: str, capsys: pytest.CaptureFixture[str]
) -> dict[str, float]:
    """`genai-meter project --config` with `text` as the configuration file: each value's limit."""
    config.write_text(text)
    code, out, _ = run_cli(
        ["project", "--ledger", sqlite_url, "--scope", scope, "--config", str(config), "-f", "json"], capsys
    )
    assert code == 0
    return {row["value"]: row["limit_usd"] for row in json.loads(out)}


def test_cli_project_reads_budget_limits_from_the_config(
    sqlite_url: str, spool_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(sqlite_url, spool_path)
    config = tmp_path / "genai-meter.yaml"
    limits = _projected_limits(
        sqlite_url,
        "tenant",
        config,
        "budgets:\n  policies:\n"
        "    - {name: each-tenant, scope: tenant, period: month, limit_usd: 7, mode: soft}\n"
        "    - {name: acme, scope: tenant, match: {tenant: acme}, period: month, limit_usd: 3, mode: hard}\n"
        "    - {name: daily, scope: tenant, period: day, limit_usd: 1}\n",
        capsys,
    )
    assert limits["acme"] == 3.0, "the budget that names the tenant wins over the '*' one; daily ones are skipped"
    assert all(limit == 7.0 for value, limit in limits.items() if value != "acme")
    config.write_text("budgets:\n  policies:\n    - {name: x, scope: tenant, period: month, limit_usd: -1}\n")
    code, _, err = run_cli(["project", "--ledger", sqlite_url, "--scope", "tenant", "--config", str(config)], capsys)
    assert code == 2 and "'x'" in err


def _fill_users(url: str, spool: Path, users: list[str | None]) -> None:
    records = many(len(users))
    for record, user in zip(records, users, strict=True):
        record.user = user
    with LedgerWriter(url, spool_path=spool) as writer:
        for record in records:
            writer.submit(record)


FORMULAS = ["=cmd|' /C calc'!A0", "+SUM(1)", "-2+3", "@x", "\tTAB", "\rCR"]


def test_csv_text_cells_cannot_run_as_formulas(
    sqlite_url: str, spool_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill_users(sqlite_url, spool_path, [*FORMULAS, "plain", None])
    neutral = {"'" + user for user in FORMULAS} | {"plain", ""}

    code, out, _ = run_cli(["export", "--ledger", sqlite_url, "-f", "csv"], capsys)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and {row["user_id"] for row in rows} == neutral
    assert {row["input_tokens"] for row in rows} == {"10"} and rows[0]["ts"] == str(DAY1)
    code, out, _ = run_cli(["report", "--ledger", sqlite_url, "-g", "user", "-f", "csv"], capsys)
    assert code == 0 and {row["user"] for row in csv.DictReader(io.StringIO(out))} == neutral

    # JSON is data, not a spreadsheet: left exactly as stored.
    code, out, _ = run_cli(["export", "--ledger", sqlite_url, "-f", "jsonl"], capsys)
    assert {json.loads(line)["user_id"] for line in out.splitlines()} == {*FORMULAS, "plain", None}
    code, out, _ = run_cli(["report", "--ledger", sqlite_url, "-g", "user", "-f", "json"], capsys)
    assert {row["user"] for row in json.loads(out)} == {*FORMULAS, "plain", None}


def test_csv_numbers_are_left_alone() -> None:
    from genai_meter.ledger._render import write_rows

    out = io.StringIO()
    row = {"model": "-m", "difference": -0.5, "calls": -3, "ok": False}
    write_rows([row], list(row), "csv", out)
    assert out.getvalue() == "model,difference,calls,ok\n'-m,-0.5,-3,False\n"


def test_table_shows_control_characters_escaped(
    sqlite_url: str, spool_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    users = ["new\nline", "tab\there", "bell\x07\x1b[31mred", "cr\rlf", "sep\u2028x", "ünï"]
    _fill_users(sqlite_url, spool_path, users)
    code, out, _ = run_cli(["report", "--ledger", sqlite_url, "-g", "user", "--order", "calls"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2 + len(users)  # header, rule, one line per group
    width = len(lines[0])
    assert {line.split("  ")[0].rstrip() for line in lines[2:]} == {
        "new\\nline",
        "tab\\there",
        "bell\\x07\\x1b[31mred",
        "cr\\rlf",
        "sep\\u2028x",
        "ünï",
    }
    assert all(len(line) == width for line in lines[2:])
    code, out, _ = run_cli(["report", "--ledger", sqlite_url, "-g", "user", "-f", "json"], capsys)
    assert {row["user"] for row in json.loads(out)} == set(users)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["project", "--budget", "x=nan"], "--budget 'x=nan': nan is not a finite number >= 0"),
        (["project", "--budget", "x=inf"], "--budget 'x=inf': inf is not a finite number >= 0"),
        (["project", "--budget", "x=-5"], "--budget 'x=-5': -5.0 is not a finite number >= 0"),
        (["project", "--window-days", "100000000"], "--window-days: 100000000 is not a whole number from 1 to 3660"),
        (["project", "--window-days", "0"], "--window-days: 0 is not a whole number from 1 to 3660"),
        (["report", "--top", "0", "-g", "user"], "--top must be at least 1, not 0"),
    ],
)
def test_bad_cli_values_are_one_line_errors(
    sqlite_url: str, spool_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    _fill(sqlite_url, spool_path)
    code, out, err = run_cli([*argv, "--ledger", sqlite_url], capsys)
    assert (code, out, err) == (2, "", f"genai-meter {argv[0]}: {message}\n")


def test_cli_extreme_but_valid_values(sqlite_url: str, spool_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fill(sqlite_url, spool_path)
    code, out, _ = run_cli(
        ["report", "--ledger", sqlite_url, "-g", "user", "--top", "99999999999999999999", "-f", "json"], capsys
    )
    assert code == 0 and [row["user"] for row in json.loads(out)] == ["bob", "alice", "carol"]
    # A budget far above the spend: not reached this month, no date out of a calendar's range.
    code, out, _ = run_cli(["project", "--ledger", sqlite_url, "--budget", "global=10000", "-f", "json"], capsys)
    assert code == 0
    [row] = json.loads(out)
    assert (row["limit_usd"], row["runs_out_on"], row["budget_status"]) == (10000.0, None, "not_reached")


def test_cli_project_compares_configured_users_as_the_ledger_holds_them(
    sqlite_url: str, spool_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With `pseudonymize_users_key`, the ledger holds pseudonyms; a budget names the user's own id."""
    pseudonym = Pseudonymizer("k-test")
    _fill_users(sqlite_url, spool_path, [pseudonym("alice"), pseudonym("bob")])
    limits = _projected_limits(
        sqlite_url,
        "user",
        tmp_path / "genai-meter.yaml",
        "pseudonymize_users_key: k-test\nbudgets:\n  policies:\n"
        "    - {name: alice, scope: user, match: {user: alice}, period: month, limit_usd: 4, mode: hard}\n"
        "    - {name: each-user, scope: user, period: month, limit_usd: 9, mode: soft}\n",
        capsys,
    )
    assert limits[pseudonym("alice")] == 4.0, "the budget naming alice applies to her pseudonym"
    assert all(limit == 9.0 for value, limit in limits.items() if value != pseudonym("alice"))


def test_projection_sums_are_rounded_as_reports_are(ledger_url: str, spool_path: Path) -> None:
    """Nine days of $0.10 summed to 0.8999999999999999 (rate 0.09999999999999999), so a $0.90
    budget, spent in full, was `runs_out` instead of `exhausted`."""
    with LedgerWriter(ledger_url, spool_path=spool_path) as writer:
        for day in range(1, 10):
            writer.submit(
                CallRecord(
                    time=datetime(2026, 3, day, 1, tzinfo=timezone.utc).timestamp(),
                    provider="openai",
                    operation="chat",
                    request_model="gpt-4o-mini",
                    response_id=f"dime-{day}",
                    cost_usd=0.1,
                )
            )
    now = datetime(2026, 3, 10, 12, tzinfo=timezone.utc)
    with open_ledger(ledger_url) as ledger:
        [spent] = project(ledger, {"all": 0.9}, now=now)
        [left] = project(ledger, {"all": 1.0}, now=now)
    assert spent.as_dict() == {
        "scope": "global",
        "value": None,
        "month_to_date_usd": 0.9,
        "daily_rate_usd": 0.1,
        "projected_month_end_usd": 3.05,  # 0.9 + 0.1 x 21.5 days
        "limit_usd": 0.9,
        "runs_out_on": "2026-03-09",
        "exhausted": True,
        "budget_status": "exhausted",
    }
    assert (left.month_to_date_usd, left.daily_rate_usd, left.budget_status) == (0.9, 0.1, "runs_out")
    assert left.runs_out_on is not None and left.runs_out_on.isoformat() == "2026-03-11"


def test_global_projection_on_both_backends(ledger_url: str, spool_path: Path) -> None:
    """The global scope grouped by a constant ('*'), which PostgreSQL refuses ("non-integer constant
    in GROUP BY"): `genai-meter project` without --scope failed on every PostgreSQL ledger."""
    _fill(ledger_url, spool_path)
    now = datetime(2026, 1, 3, 12, tzinfo=timezone.utc)
    with open_ledger(ledger_url) as ledger:
        assert ledger.daily_costs(scope=None, since="2026-01-01") == [
            ("*", "2026-01-01", 0.02415),
            ("*", "2026-01-02", 0.0),
        ]
        [overall] = project(ledger, {"month": 1.0}, now=now)
    assert (overall.value, overall.month_to_date_usd, overall.limit_usd, overall.budget_status) == (
        None,
        0.02415,
        1.0,
        "not_reached",
    )
    assert overall.daily_rate_usd == pytest.approx(0.02415 / 7, abs=1e-12)


def _genai_meter(*argv: str) -> list[str]:
    """The command line that runs `genai-meter <argv>` in a new process of this interpreter."""
    return [sys.executable, "-c", "import sys; from genai_meter.cli import main; sys.exit(main())", *argv]


def test_export_into_a_closed_pipe_ends_quietly(ledger_url: str, spool_path: Path) -> None:
    """`genai-meter export | head -1` printed "Broken pipe", exited 2, and then a traceback: the row
    cursor was closed by the garbage collector after the database ("Cannot operate on a closed
    database")."""
    with LedgerWriter(ledger_url, spool_path=spool_path) as writer:
        for record in many(3000):  # about 1 MB of CSV: far more than a pipe holds
            writer.submit(record)
    for argv in (["export", "-f", "csv"], ["report", "-g", "user", "-f", "csv"]):
        process = subprocess.Popen(
            _genai_meter(*argv, "--ledger", ledger_url), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert process.stdout is not None and process.stderr is not None
        head = process.stdout.readline()
        process.stdout.close()  # as `head -1` does
        err = process.stderr.read().decode()
        assert (process.wait(timeout=60), err) == (0, "")
        assert head.startswith(b"call_key,ts," if argv[0] == "export" else b"user,calls,")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_export_to_a_full_disk_is_one_line(ledger_url: str, spool_path: Path) -> None:
    with LedgerWriter(ledger_url, spool_path=spool_path) as writer:
        for record in many(100):
            writer.submit(record)
    done = subprocess.run(
        _genai_meter("export", "--ledger", ledger_url, "-f", "csv", "-o", "/dev/full"), capture_output=True, text=True
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        2,
        "",
        "genai-meter export: [Errno 28] No space left on device\n",
    )


def test_a_none_budget_is_the_unset_groups(
    ledger_url: str, spool_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--budget '(none)=USD'` was taken for a user spelt "(none)": a phantom row with the budget,
    while the calls without a user had none. It is the unset group's, as `--user '(none)'` is."""
    _fill_users(ledger_url, spool_path, [None, None, "alice"])  # $0.001, $0.002, $0.003
    now = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
    with open_ledger(ledger_url) as ledger:
        got = project(ledger, {"(none)": 0.003, "*": 1.0}, scope="user", now=now)
    assert [(p.value, p.month_to_date_usd, p.limit_usd, p.budget_status) for p in got] == [
        ("alice", 0.003, 1.0, "not_reached"),
        (None, 0.003, 0.003, "exhausted"),
    ]
    code, out, err = run_cli(
        ["project", "--ledger", ledger_url, "--scope", "user", "--budget", "(none)=2", "-f", "json"], capsys
    )
    assert code == 0, err
    limits = {row["value"]: row["limit_usd"] for row in json.loads(out)}  # alice only in January 2026
    assert (limits[None], "(none)" in limits, limits.get("alice")) == (2.0, False, None)


def test_cli_project_budget_replaces_the_configs_global_one(
    sqlite_url: str,
    spool_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the app's configuration (GENAI_METER_CONFIG) holding a global budget, `--budget
    total=50` failed: "scope global takes one budget, not 2: global, total"."""
    _fill(sqlite_url, spool_path)
    config = tmp_path / "genai-meter.yaml"
    config.write_text(
        "budgets:\n  policies:\n"
        "    - {name: all, scope: global, period: month, limit_usd: 500}\n"
        "    - {name: each-tenant, scope: tenant, period: month, limit_usd: 7}\n"
    )
    monkeypatch.setenv("GENAI_METER_CONFIG", str(config))
    argv = ["project", "--ledger", sqlite_url, "-f", "json"]
    for extra, limit in (([], 500.0), (["--budget", "total=50"], 50.0)):
        code, out, err = run_cli([*argv, *extra], capsys)
        assert code == 0, err
        assert [row["limit_usd"] for row in json.loads(out)] == [limit]
    code, out, err = run_cli([*argv, "--scope", "tenant", "--budget", "acme=3"], capsys)
    assert code == 0, err
    assert {row["value"]: row["limit_usd"] for row in json.loads(out)}["acme"] == 3.0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["report", "--top", "1"], "--top 1 needs --group-by or --period (the totals have no groups to rank)"),
        (
            ["report", "--order", "calls"],
            "--order calls needs --group-by or --period (the totals have no groups to rank)",
        ),
        (
            ["reconcile", "--report", "usage.json", "--base-url", "http://127.0.0.1:9"],
            "--base-url http://127.0.0.1:9 is for fetching; with --report the reports are read from files",
        ),
    ],
)
def test_options_that_would_change_nothing_are_refused(
    sqlite_url: str, spool_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    """These were accepted and ignored: `report --top 1` printed the three totals rows unchanged,
    `reconcile --report F --base-url U` read F and never used U."""
    _fill(sqlite_url, spool_path)
    code, out, err = run_cli([argv[0], "--ledger", sqlite_url, *argv[1:]], capsys)
    assert (code, out, err) == (2, "", f"genai-meter {argv[0]}: {message}\n")


def test_request_model_is_a_filter_as_it_is_a_group(
    sqlite_url: str, spool_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(sqlite_url, spool_path)
    argv = ["report", "--ledger", sqlite_url, "-g", "request_model", "-f", "json"]
    code, out, err = run_cli([*argv, "--request-model", "gpt-4o", "--request-model", "my-finetune"], capsys)
    assert code == 0, err
    assert [(row["request_model"], row["calls"]) for row in json.loads(out)] == [("gpt-4o", 3), ("my-finetune", 1)]
    code, out, err = run_cli(["export", "--ledger", sqlite_url, "--request-model", "claude-sonnet-4-5"], capsys)
    assert code == 0, err
    assert [json.loads(line)["call_key"] for line in out.splitlines()] == ["msg_2"]
