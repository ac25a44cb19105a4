"""`genai-meter budgets`: check, status, block / unblock, and one-line errors instead of tracebacks."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from genai_meter.budgets import BudgetGuard, PendingCall
from genai_meter.cli import _budgets


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="genai-meter")
    _budgets.register(parser.add_subparsers())
    args = parser.parse_args(list(argv))
    return int(args.func(args))


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "genai-meter.yaml"
    path.write_text(body, encoding="utf-8")
    return path


GOOD = """
pricing_file: prices.yaml   # other top-level keys are not ours
budgets:
  store: sqlite://{db}
  timezone: Europe/Berlin
  policies:
    - name: per-tenant
      scope: tenant
      period: month
      limit_usd: 1
      mode: hard
"""


def test_check_ok_and_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, GOOD.format(db=tmp_path / "b.db"))
    assert run("budgets", "check", str(path)) == 0
    assert capsys.readouterr().out.startswith(f"{path}: ok (1 budget(s), 0 block list entries")
    bad = write_config(tmp_path, "budgets:\n  policies:\n    - {name: x, limit_usd: 1, period: fortnight}\n")
    assert run("budgets", "check", str(bad)) == 2
    err = capsys.readouterr().err
    assert f"{bad}: budget 'x': field 'period': 'fortnight' is not one of" in err
    assert "Traceback" not in err


def test_check_hides_the_store_password(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = "budgets:\n  store: redis://:s3cretpass@127.0.0.1:6379/9\n  policies: [{name: a, limit_usd: 5}]\n"
    path = write_config(tmp_path, body)
    assert run("budgets", "check", str(path)) == 0
    out = capsys.readouterr().out
    assert out == f"{path}: ok (1 budget(s), 0 block list entries, store redis://***@127.0.0.1:6379/9)\n"


def test_ids_that_yaml_1_1_reads_as_numbers_stay_as_written(tmp_path: Path) -> None:
    """`00042` is octal 34 to YAML 1.1: the CLI read the policy as tenant "34" (and `12:30` as 750)."""
    body = ("budgets:\n  policies: [{name: t, scope: tenant, match: {tenant: 00042}, limit_usd: 5}]\n"
            "  blocked: [{user: 12:30}]\n")
    config = _budgets.load_config(str(write_config(tmp_path, body)))
    assert [policy.match for policy in config.policies] == [(("tenant", "00042"),)]
    assert [(entry.kind, entry.value) for entry in config.blocked] == [("user", "12:30")]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("budgets: [1, 2]\n", "the budgets section must be a mapping"),
        ("a: [\n", "not valid YAML"),
        ("other: 1\n", "no budgets section"),
    ],
)
def test_check_bad_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, fragment: str
) -> None:
    assert run("budgets", "check", str(write_config(tmp_path, body))) == 2
    assert fragment in capsys.readouterr().err
    assert run("budgets", "check", str(tmp_path / "missing.yaml")) == 2
    assert "cannot read" in capsys.readouterr().err


def test_status_block_unblock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, GOOD.format(db=tmp_path / "b.db"))
    guard = BudgetGuard(_budgets.load_config(str(path)))  # the app, spending
    reservation = guard.check_and_reserve(PendingCall("openai", "m", "chat", tenant="acme", estimate_usd=0.5))
    assert reservation is not None
    guard.settle(reservation, 0.8)
    guard.close()

    monkeypatch.setenv("GENAI_METER_CONFIG", str(path))
    assert run("budgets", "status", "--tenant", "acme", "--json") == 0
    [status] = json.loads(capsys.readouterr().out)
    assert (
        status["budget"],
        status["scope_value"],
        status["spend_usd"],
        status["limit_usd"],
        status["level"],
    ) == ("per-tenant", "acme", 0.8, 1.0, "warning")
    assert status["uses_remaining_min"] == 0 and status["uses_remaining_max"] == 0
    assert run("budgets", "status", "--tenant", "acme") == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == [
        "BUDGET",
        "SCOPE",
        "PERIOD",
        "END",
        "SPEND",
        "LIMIT",
        "USED",
        "LEVEL",
        "USES",
        "LEFT",
    ]
    assert table[1].split()[:2] == ["per-tenant", "acme"]
    assert "$0.8000" in table[1] and "80.0%" in table[1]

    assert run("budgets", "block", "--user", "u1", "--reason", "card declined", "--config", str(path)) == 0
    assert run("budgets", "blocked", "--json") == 0
    out = capsys.readouterr().out
    assert json.loads(out[out.index("[") :]) == [{"kind": "user", "value": "u1", "reason": "card declined"}]
    assert run("budgets", "unblock", "--user", "u1") == 0
    assert run("budgets", "blocked") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "nobody is blocked"


def test_unblock_of_someone_not_blocked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENAI_METER_CONFIG", str(write_config(tmp_path, GOOD.format(db=tmp_path / "b.db"))))
    assert run("budgets", "block", "--user", "alice", "--reason", "abuse") == 0
    capsys.readouterr()
    assert run("budgets", "unblock", "--user", "alcie") == 1  # a typo: nothing was lifted
    assert capsys.readouterr() == ("", "user 'alcie' was not blocked\n")
    assert run("budgets", "unblock", "--tenant", "alice") == 1
    assert capsys.readouterr() == ("", "tenant 'alice' was not blocked\n")
    assert run("budgets", "unblock", "--user", "alice") == 0
    assert capsys.readouterr() == ("unblocked user 'alice'\n", "")
    assert run("budgets", "unblock", "--user", "alice") == 1  # the second time there is nothing to lift
    assert capsys.readouterr().err == "user 'alice' was not blocked\n"


def test_block_needs_a_shared_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, "budgets:\n  policies: [{name: g, limit_usd: 1}]\n")
    assert run("budgets", "block", "--tenant", "t", "--reason", "x", "--config", str(path)) == 2
    assert "memory" in capsys.readouterr().err


def test_no_config(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GENAI_METER_CONFIG", raising=False)
    assert run("budgets", "status") == 2
    assert "no configuration file" in capsys.readouterr().err


def test_unreachable_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(
        tmp_path, "budgets:\n  store: redis://127.0.0.1:1/0\n  policies: [{name: g, limit_usd: 1}]\n"
    )
    assert run("budgets", "status", "--config", str(path)) == 2
    err = capsys.readouterr().err
    assert "cannot reach the budget store" in err and "Traceback" not in err


def test_store_url_that_cannot_be_used(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A Redis URL with a port that is not a number: every command says so in one line, exit 2."""
    path = write_config(tmp_path, "budgets:\n  store: redis://:notaport/x\n  policies: [{name: a, limit_usd: 1}]\n")
    message = (
        f"genai-meter budgets: {path}: field 'store': 'redis://:notaport/x' is not a valid Redis URL: "
        "Port could not be cast to integer value as 'notaport'\n"
    )
    for argv in (["check", str(path)], ["status", "--config", str(path)], ["blocked", "--config", str(path)]):
        assert run("budgets", *argv) == 2
        assert capsys.readouterr().err == message
