"""The committed dashboards and rules equal what the generator produces; the CLI writes and checks them."""

from __future__ import annotations

from pathlib import Path

import pytest

from genai_meter import monitoring
from genai_meter.cli import _dashboards

from .conftest import DASHBOARDS_DIR


def test_committed_files_equal_generated() -> None:
    assert monitoring.check(DASHBOARDS_DIR) == []


def test_generation_is_deterministic() -> None:
    assert monitoring.render() == monitoring.render()


def test_expected_files() -> None:
    assert sorted(monitoring.render()) == [
        "json/budgets.json",
        "json/models.json",
        "json/overview.json",
        "json/per-user.json",
        "rules/genai-meter.rules.yml",
        "rules/tests/blocked-calls.test.yml",
        "rules/tests/budgets.test.yml",
        "rules/tests/error-rate.test.yml",
        "rules/tests/spend-spike.test.yml",
        "rules/tests/unpriced-calls.test.yml",
    ]


def _run(*argv: str) -> int:
    import argparse

    parser = argparse.ArgumentParser()
    _dashboards.register(parser.add_subparsers())
    args = parser.parse_args(["dashboards", *argv])
    result: int = args.func(args)
    return result


def test_cli_writes_then_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert _run("--out", str(out), "--check") == 1
    assert "stale or missing" in capsys.readouterr().err
    assert _run("--out", str(out)) == 0
    assert _run("--out", str(out), "--check") == 0
    (out / "json" / "overview.json").write_text("{}")
    assert _run("--out", str(out), "--check") == 1
    assert "json/overview.json" in capsys.readouterr().err


def test_cli_reports_unwritable_out_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert _run("--out", str(blocker / "sub")) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and "Traceback" not in err
