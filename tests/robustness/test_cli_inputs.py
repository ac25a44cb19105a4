"""Bad CLI input is one clear line and a non-zero exit (or an empty filtered result), never a
traceback, and hostile filter values never reach the SQL as SQL."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from genai_meter.cli import main
from genai_meter.ledger import open_ledger

CALLS_TABLE = "genai_meter_calls"


@pytest.fixture()
def ledger_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/l.db"
    with open_ledger(url):
        pass
    return url


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse rejects the argument itself
        code = exit_.code if isinstance(exit_.code, int) else 1
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out, err
    return code, out, err


def _table_exists(ledger_url: str) -> bool:
    path = ledger_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name=?", (CALLS_TABLE,)).fetchall()
    return bool(rows)


@pytest.mark.parametrize(
    "extra",
    [
        ["--since", "notadate"],
        ["--until", "2025-13-45"],
        ["--since", "99999999d"],
        ["--since", "-3d"],
        ["--group-by", "user; drop table genai_meter_calls"],
        ["--group-by", "nothing"],
        ["--top", "-1"],
        ["--top", "x"],
        ["--period", "fortnight"],
    ],
)
def test_report_bad_arguments_exit_nonzero(
    ledger_url: str, extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = _run(["report", "--ledger", ledger_url, *extra], capsys)
    assert code != 0 or extra[:1] == ["--top"], (extra, code)
    if code != 0:
        assert err.strip(), extra
    assert _table_exists(ledger_url)


@pytest.mark.parametrize(
    "extra",
    [
        ["--user", "x' OR '1'='1"],
        ["--tenant", "a'; DROP TABLE genai_meter_calls; --"],
        ["--feature", '"); DELETE FROM genai_meter_calls; --'],
        ["--user", "(none)"],
        ["--user", "\u202e\x00nul"],
    ],
)
def test_report_hostile_filters_are_values(
    ledger_url: str, extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _err = _run(["report", "--ledger", ledger_url, "--format", "json", *extra], capsys)
    assert code == 0
    rows = json.loads(out)
    assert isinstance(rows, list) and rows, out
    assert all(row["calls"] == 0 for row in rows), out  # the filter was a value: nothing matched
    assert _table_exists(ledger_url)


@pytest.mark.parametrize("command", [["export"], ["projection"]])
def test_other_commands_bad_since(ledger_url: str, command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = _run([*command, "--ledger", ledger_url, "--since", "notadate"], capsys)
    assert code != 0
    assert err.strip()


@pytest.mark.parametrize(
    "url", ["sqlite:///nonexistent-dir/x/y/l.db", "mysql://x", "not a url", "postgresql://127.0.0.1:1/x"]
)
def test_report_bad_ledger_url(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = _run(["report", "--ledger", url], capsys)
    assert code != 0
    assert err.strip()


BAD_FILES = {
    "empty-list.yaml": "[]\n",
    "bad-yaml.yaml": "models: [unclosed\n",
    "wrong-types.yaml": "models:\n  m: {provider: openai, input: abc}\n",
    "binary.yaml": b"\xff\xfe\x00garbage",
    "bad.json": "{not json",
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_prices_check_bad_file(tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / name
    content = BAD_FILES[name]
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    code, _out, err = _run(["prices", "check", str(path)], capsys)
    assert code != 0
    assert name in err


def test_prices_check_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = _run(["prices", "check", str(tmp_path / "missing.yaml")], capsys)
    assert code != 0
    assert "missing.yaml" in err


BAD_BUDGETS = {
    "period.yaml": "budgets:\n  policies:\n    - {name: a, period: fortnight, limit_usd: 5}\n",
    "toplevel.yaml": "- just a list\n",
    "budgets-list.yaml": "budgets: [1, 2]\n",
    "bad-yaml.yaml": "budgets: {policies: [\n",
    "timezone.yaml": "budgets:\n  timezone: Mars/Olympus\n  policies: [{name: a, limit_usd: 1}]\n",
}


@pytest.mark.parametrize("name", sorted(BAD_BUDGETS))
def test_budgets_check_bad_file(tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / name
    content = BAD_BUDGETS[name]
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    code, _out, err = _run(["budgets", "check", str(path)], capsys)
    assert code != 0
    assert name in err


def test_budgets_check_non_utf8_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    code, _out, err = _run(["budgets", "check", str(path)], capsys)
    assert code != 0
    assert "binary.yaml" in err


def test_budgets_check_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = _run(["budgets", "check", str(tmp_path / "missing.yaml")], capsys)
    assert code != 0
    assert "missing.yaml" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["prices", "cost", "gpt-4o-mini", "--input", "-5", "--output", "1"],
        ["prices", "cost", "gpt-4o-mini", "--input", "abc", "--output", "1"],
        ["prices", "cost", "no-such-model-xyz", "--input", "5", "--output", "1"],
        ["prices", "cost", "gpt-4o-mini", "--input", "5", "--output", "1", "--at", "2025-02-30"],
        ["prices", "show", "no-such-model-xyz"],
        ["prices", "list", "--overrides", "/nonexistent/prices.yaml"],
        ["nonsense-command"],
    ],
)
def test_other_bad_arguments(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = _run(argv, capsys)
    assert code != 0
    assert err.strip()


DEEP = "[" * 3000 + "]" * 3000


@pytest.mark.parametrize(
    ("command", "name", "raw"),
    [
        ("prices", "deep.json", DEEP),
        ("prices", "deep.yaml", DEEP),
        ("prices", "alias.yaml", "&a [*a]\n"),
        ("budgets", "deep.yaml", DEEP),
    ],
)
def test_check_recursive_file(
    tmp_path: Path, command: str, name: str, raw: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / name
    path.write_text(raw, encoding="utf-8")
    code, _out, err = _run([command, "check", str(path)], capsys)
    assert code != 0
    assert name in err


@pytest.mark.parametrize("port", ["-5", "70000", "x"])
def test_demo_refuses_a_port_that_is_not_one(port: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = _run(["demo", "--metrics-port", port, "--workdir", str(tmp_path)], capsys)
    assert code == 2 and "--metrics-port" in err


def test_demo_refuses_a_port_in_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The launcher's exporter could not bind it, so the app ran unmetered while the demo waited for
    its metrics for about 12 minutes and then exited 0."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _out, err = _run(["demo", "--metrics-port", str(port), "--workdir", str(tmp_path)], capsys)
    assert code == 2
    assert err == f"genai-meter demo: --metrics-port: 127.0.0.1:{port} is in use\n"
