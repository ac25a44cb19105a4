"""`genai-meter prices ...` through its own argparse wiring (no subprocess)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from genai_meter.cli import _prices

Write = Callable[..., Path]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="genai-meter")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _prices.register(subparsers)
    args = parser.parse_args(["prices", *argv])
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_list_filters_and_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "list", "--provider", "anthropic", "--search", "claude-3-5-sonnet")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "provider",
        "model",
        "input",
        "$/M",
        "cached",
        "$/M",
        "cache-write",
        "$/M",
        "cache-write-1h",
        "$/M",
        "output",
        "$/M",
    ]
    assert lines[1].split() == ["anthropic", "claude-3-5-sonnet", "3", "0.3", "3.75", "6", "15"]
    assert "1 models" in out


def test_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "list", "--provider", "openai", "--search", "gpt-4o-mini", "--json")
    assert code == 0
    data = json.loads(out)
    row = next(r for r in data["models"] if r["model"] == "gpt-4o-mini")
    assert row == {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "input": 0.15,
        "cache_read": 0.075,
        "cache_write": 0.15,
        "cache_write_1h": 0.15,
        "output": 0.6,
        "input_audio": 0.15,  # (no audio prices of its own: audio at the text ones)
        "output_audio": 0.6,
    }
    assert data["pricing_version"].startswith("bundled-")


def test_list_with_no_match_fails(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "list", "--search", "zzz-no-such-model")
    assert code == 1 and "no model matches" in err


def test_show_history_and_tiers(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "claude-sonnet-4-6", "--provider", "anthropic")
    assert code == 0
    assert "anthropic / claude-sonnet-4-6" in out
    assert "from the start: input 3  cached 0.3  cache-write 3.75  cache-write-1h 6  output 15" in out
    assert (
        "input > 200000 tokens: input 6  cached 0.6  cache-write 7.5  cache-write-1h 12  output 22.5" in out
    )
    assert "from 2026-03-13:" in out
    assert "service tier batch: input 1.5" in out


def test_show_json_dated_periods(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "o3-2025-04-16", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["model"] == "o3" and data["provider"] == "openai"
    assert [(p["from"], p["input"], p["output"]) for p in data["periods"]] == [
        (None, 10, 40),
        ("2025-06-10", 2, 8),
    ]


def test_show_via_fallback_provider(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "show", "us.anthropic.claude-3-5-sonnet-20241022-v2:0", "--provider", "aws.bedrock"
    )
    assert code == 0 and "aws.bedrock / claude-3-5-sonnet (prices of anthropic)" in out


def test_show_unknown_model(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "show", "no-such-model")
    assert code == 1 and out == ""
    assert "no price for model 'no-such-model'" in err and "Traceback" not in err


def test_check_ok_and_bad(capsys: pytest.CaptureFixture[str], write: Write) -> None:
    good = write("models:\n  llama3: {provider: ollama, input: 0, output: 0}\n", "good.yaml")
    code, out, _ = run(capsys, "check", str(good))
    assert code == 0 and "is valid" in out and "+overrides:" in out
    bad = write("models:\n  my-model:\n    provider: openai\n    input: abc\n", "bad.yaml")
    code, out, err = run(capsys, "check", str(bad))
    assert code == 1
    assert err.strip() == (
        f"genai-meter prices: error: {bad}:4: models.my-model.input: expected a number >= 0, got 'abc'"
    )
    code, out, _ = run(capsys, "check", str(bad), "--json")
    assert code == 1 and json.loads(out)["ok"] is False


def test_cost_breakdown(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "cost",
        "claude-sonnet-4-5",
        "--provider",
        "anthropic",
        "--input",
        "250000",
        "--output",
        "1000",
        "--cache-read",
        "100000",
        "--cache-write",
        "20000",
        "--cache-write-1h",
        "5000",
        "--at",
        "2026-11-01",
    )
    assert code == 0
    assert "input (uncached)" in out and "130000 tokens  $0.780000" in out
    assert "$0.172500" in out and "$0.022500" in out
    assert out.rstrip().endswith("$1.035000")


def test_cost_json_at_date_and_service_tier(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "cost", "o3", "--input", "1000", "--output", "1000", "--at", "2025-01-01", "--json"
    )
    assert code == 0
    data = json.loads(out)
    assert data["total_usd"] == pytest.approx(0.05, abs=1e-9) and data["at"] == "2025-01-01"
    code, out, _ = run(
        capsys, "cost", "gpt-5", "--input", "1000", "--output", "1000", "--service-tier", "flex", "--json"
    )
    assert json.loads(out)["total_usd"] == pytest.approx(0.005625, abs=1e-9)


def test_cost_with_overrides(capsys: pytest.CaptureFixture[str], write: Write) -> None:
    path = write("discounts:\n  openai: 0.5\n")
    code, out, _ = run(
        capsys, "cost", "gpt-4o", "--input", "1000", "--output", "0", "--overrides", str(path), "--json"
    )
    assert code == 0 and json.loads(out)["total_usd"] == pytest.approx(0.00125, abs=1e-9)


def test_cost_user_errors(capsys: pytest.CaptureFixture[str], write: Write) -> None:
    code, _, err = run(capsys, "cost", "nope", "--input", "1", "--output", "1")
    assert code == 1 and "unpriced" in err
    code, _, err = run(capsys, "cost", "gpt-4o", "--input", "10", "--output", "1", "--cache-read", "11")
    assert code == 1 and "cannot exceed --input" in err
    bad = write("models: 3\n")
    code, _, err = run(capsys, "cost", "gpt-4o", "--input", "1", "--output", "1", "--overrides", str(bad))
    assert code == 1 and "models: expected a mapping or a list" in err
    with pytest.raises(SystemExit) as exc:
        run(capsys, "cost", "gpt-4o", "--input", "1", "--output", "1", "--at", "yesterday")
    assert exc.value.code == 2
    assert "expected a date YYYY-MM-DD, got 'yesterday'" in capsys.readouterr().err
