"""Reconciliation against provider usage and cost reports: matching, differing, malformed, fetched."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from genai_meter._record import CallRecord
from genai_meter.ledger import LedgerWriter, open_ledger

from ._cli import run_cli
from ._records import DAY1

MINI = "gpt-4o-mini-2024-07-18"
FOUR = "gpt-4o-2024-08-06"
SONNET = "claude-sonnet-4-5-20250929"
EMBED = "text-embedding-3-small"


def _call(day: int, model: str, n: int, provider: str = "openai", outcome: str = "ok") -> CallRecord:
    return CallRecord(
        time=DAY1 + day * 86400 + n,
        provider=provider,
        operation="chat",
        request_model=model.rsplit("-", 3)[0],
        response_model=model,
        response_id=f"{provider}-{day}-{model}-{n}",
        input_tokens=1000,
        output_tokens=100,
        cost_usd=0.25,
        outcome=outcome,
    )


@pytest.fixture
def ledger(ledger_url: str, spool_path: Path) -> str:
    """Day 0: 4 calls of FOUR, 2 of MINI; day 1: 3 of MINI (and one blocked, never billed); Anthropic:
    2 calls of SONNET on day 0."""
    calls = [_call(0, FOUR, i) for i in range(4)] + [_call(0, MINI, 10 + i) for i in range(2)]
    calls += [_call(1, MINI, i) for i in range(3)] + [_call(1, MINI, 99, outcome="blocked")]
    calls += [_call(0, SONNET, 50 + i, provider="anthropic") for i in range(2)]
    with LedgerWriter(ledger_url, spool_path=spool_path) as writer:
        for record in calls:
            writer.submit(record)
    return ledger_url


def _openai_usage(extra_mini_day1: int = 0) -> dict[str, Any]:
    def result(model: str, n: int, extra: int = 0) -> dict[str, Any]:
        return {
            "object": "organization.usage.completions.result",
            "model": model,
            "num_model_requests": n,
            "input_tokens": 1000 * n + extra,
            "output_tokens": 100 * n,
            "input_cached_tokens": 0,
        }

    return {
        "object": "page",
        "has_more": False,
        "next_page": None,
        "data": [
            {
                "object": "bucket",
                "start_time": int(DAY1),
                "end_time": int(DAY1) + 86400,
                "results": [result(FOUR, 4), result(MINI, 2)],
            },
            {
                "object": "bucket",
                "start_time": int(DAY1) + 86400,
                "end_time": int(DAY1) + 2 * 86400,
                "results": [result(MINI, 3, extra_mini_day1)],
            },
        ],
    }


def _openai_costs(mini_day1_usd: float = 0.75) -> dict[str, Any]:
    def item(model: str, kind: str, usd: float) -> dict[str, Any]:
        return {
            "object": "organization.costs.result",
            "amount": {"value": usd, "currency": "usd"},
            "line_item": f"{model}, {kind}",
            "project_id": None,
        }

    return {
        "object": "page",
        "has_more": False,
        "next_page": None,
        "data": [
            {
                "object": "bucket",
                "start_time": int(DAY1),
                "end_time": int(DAY1) + 86400,
                "results": [item(FOUR, "input", 0.6), item(FOUR, "output", 0.4), item(MINI, "input", 0.5)],
            },
            {
                "object": "bucket",
                "start_time": int(DAY1) + 86400,
                "end_time": int(DAY1) + 2 * 86400,
                "results": [item(MINI, "input", mini_day1_usd)],
            },
        ],
    }


def _write(path: Path, body: Any) -> str:
    path.write_text(json.dumps(body))
    return str(path)


RANGE = ["--since", "2026-01-01", "--until", "2026-01-03"]


def test_matching_reports_exit_zero_and_are_stored(
    ledger: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    usage = _write(tmp_path / "usage.json", _openai_usage())
    costs = _write(tmp_path / "costs.json", _openai_costs())
    code, out, err = run_cli(["reconcile", "--ledger", ledger, "--report", usage, "--report", costs, *RANGE], capsys)
    assert code == 0, err
    assert out == ""
    assert "12 lines compared, match" in err
    with open_ledger(ledger) as reader:
        [run] = reader.reconciliation_runs()
        assert (run["provider"], run["lines"], run["mismatches"], bool(run["ok"])) == ("openai", 12, 0, True)
        lines = reader.reconciliation_lines(run["id"])
    cost_day0_four = next(x for x in lines if (x["day"], x["model"], x["measure"]) == ("2026-01-01", FOUR, "cost_usd"))
    assert cost_day0_four["ledger_value"] == pytest.approx(1.0, abs=1e-9)
    assert cost_day0_four["provider_value"] == pytest.approx(1.0, abs=1e-9)


def test_known_difference_in_one_day_and_model(ledger: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    usage = _write(tmp_path / "usage.json", _openai_usage(extra_mini_day1=250))
    costs = _write(tmp_path / "costs.json", _openai_costs(mini_day1_usd=1.25))
    code, out, err = run_cli(
        ["reconcile", "--ledger", ledger, "--report", usage, "--report", costs, *RANGE, "-f", "json"], capsys
    )
    assert code == 1
    assert "2 mismatch(es)" in err
    got = json.loads(out)
    assert [(x["day"], x["model"], x["measure"]) for x in got] == [
        ("2026-01-02", MINI, "input_tokens"),
        ("2026-01-02", MINI, "cost_usd"),
    ]
    assert got[0]["difference"] == -250
    assert got[1]["difference"] == pytest.approx(-0.5, abs=1e-9)
    # Under a wide enough threshold the same reports match.
    code, _, _ = run_cli(
        [
            "reconcile",
            "--ledger",
            ledger,
            "--report",
            usage,
            "--report",
            costs,
            *RANGE,
            "--threshold-usd",
            "0.6",
            "--threshold-tokens",
            "300",
            "--no-store",
        ],
        capsys,
    )
    assert code == 0


def test_anthropic_cost_in_cents(ledger: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    usage = {
        "data": [
            {
                "starting_at": "2026-01-01T00:00:00Z",
                "ending_at": "2026-01-02T00:00:00Z",
                "results": [
                    {
                        "uncached_input_tokens": 1200,
                        "cache_read_input_tokens": 500,
                        "cache_creation": {"ephemeral_5m_input_tokens": 200, "ephemeral_1h_input_tokens": 100},
                        "output_tokens": 200,
                        "model": SONNET,
                    }
                ],
            }
        ],
        "has_more": False,
        "next_page": None,
    }
    cost = {
        "data": [
            {
                "starting_at": "2026-01-01T00:00:00Z",
                "ending_at": "2026-01-02T00:00:00Z",
                "results": [
                    {
                        "amount": "30.5",
                        "currency": "USD",
                        "cost_type": "tokens",
                        "model": SONNET,
                        "token_type": "output_tokens",
                    },
                    {
                        "amount": "19.5",
                        "currency": "USD",
                        "cost_type": "tokens",
                        "model": SONNET,
                        "token_type": "uncached_input_tokens",
                    },
                ],
            }
        ],
        "has_more": False,
        "next_page": None,
    }
    code, _, err = run_cli(
        [
            "reconcile",
            "--ledger",
            ledger,
            "--report",
            _write(tmp_path / "u.json", usage),
            "--report",
            _write(tmp_path / "c.json", cost),
            *RANGE,
        ],
        capsys,
    )
    assert code == 0, err  # 2000 input, 200 output, $0.50 == 50 cents
    assert "3 lines compared, match" in err


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "not JSON"),
        ({"data": [{"start_time": "yesterday", "results": []}]}, "$.data[0].start_time: expected Unix seconds"),
        (
            {"data": [{"start_time": 1767225600, "results": [{"input_tokens": -5, "model": "m"}]}]},
            "$.data[0].results[0].input_tokens: expected a non-negative whole number, got -5",
        ),
        (
            {
                "data": [
                    {
                        "starting_at": "2026-01-01T00:00:00Z",
                        "results": [{"amount": "12,5", "currency": "USD", "cost_type": "tokens"}],
                    }
                ]
            },
            "$.data[0].results[0].amount: expected a decimal amount, got '12,5'",
        ),
        (
            {"data": [{"start_time": 1767225600, "results": [{"colour": "blue"}]}]},
            "not a usage or cost result of a known provider",
        ),
        ({"something": 1}, "no report buckets found"),
        ({"data": 5}, "$.data: expected a list of buckets"),
        (
            {"data": [{"start_time": 1767225600, "results": [{"object": "organization.usage.images.result"}]}]},
            "not a usage or cost result of a known provider",
        ),
        (
            {
                "data": [
                    {
                        "start_time": 1767225600,
                        "results": [{"object": "organization.usage.images.result", "num_model_requests": 2}],
                    }
                ]
            },
            "$.data[0].results[0].object: 'organization.usage.images.result' is not a usage report the ledger"
            " can be compared with (use the completions or embeddings usage report)",
        ),
        # Numbers JSON has no word for (Python reads them), times no calendar holds, files no parser reads.
        (
            '{"data":[{"start_time":1767225600,"results":[{"model":"m","input_tokens":NaN}]}]}',
            "$.data[0].results[0].input_tokens: expected a non-negative whole number, got nan",
        ),
        (
            '{"data":[{"start_time":1767225600,"results":[{"input_tokens":1,"output_tokens":Infinity}]}]}',
            "$.data[0].results[0].output_tokens: expected a non-negative whole number, got inf",
        ),
        (
            '{"data":[{"start_time":1767225600,"results":[{"model":"m","input_tokens":1e300}]}]}',
            "$.data[0].results[0].input_tokens: expected a non-negative whole number, got 1e+300",
        ),
        (
            '{"data":[{"start_time":1767225600,"results":[{"line_item":"m, input","amount":{"value":NaN}}]}]}',
            "$.data[0].results[0].amount.value: expected a finite amount, got nan",
        ),
        ('{"data":[{"start_time":NaN,"results":[]}]}', "$.data[0].start_time: expected Unix seconds, got nan"),
        ('{"data":[{"start_time":1e20,"results":[]}]}', "$.data[0].start_time: Unix seconds out of range, got 1e+20"),
        (
            {"data": [{"starting_at": "0001-01-01T00:00:00+05:00", "results": []}]},
            "$.data[0].starting_at: expected an RFC 3339 time, got '0001-01-01T00:00:00+05:00'",
        ),
        (b"SQLite format 3\x00" + bytes(range(256)), "not JSON text (undecodable byte at offset 144)"),
        ("[" * 100_000 + "]" * 100_000, "not a report (JSON nested too deeply to read)"),
        (json.loads('{"x":' * 40 + "{}" + "}" * 40), "$" + ".x" * 33 + ": nested deeper than 32 levels"),
    ],
)
def test_malformed_report_is_a_clear_error(
    ledger: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], body: Any, message: str
) -> None:
    path = tmp_path / "bad.json"
    if isinstance(body, bytes):
        path.write_bytes(body)
    else:
        path.write_text(body if isinstance(body, str) else json.dumps(body))
    code, _, err = run_cli(["reconcile", "--ledger", ledger, "--report", str(path), *RANGE], capsys)
    assert code == 2
    assert err.startswith(f"genai-meter reconcile: {path}")
    assert message in err
    assert err.count("\n") == 1


def _embeddings_usage(input_tokens: int) -> dict[str, Any]:
    result = {
        "object": "organization.usage.embeddings.result",
        "model": EMBED,
        "num_model_requests": 2,
        "input_tokens": input_tokens,
    }
    return {"data": [{"start_time": int(DAY1), "end_time": int(DAY1) + 86400, "results": [result]}]}


def test_each_report_is_compared_with_the_calls_it_covers(
    ledger: str, spool_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """OpenAI's completions usage report knows no embeddings calls; its embeddings report no chat
    calls; the cost report bills both."""
    embeddings = [
        CallRecord(
            time=DAY1 + 600 + n,
            provider="openai",
            operation="embeddings",
            request_model=EMBED,
            response_model=EMBED,
            request_id=f"emb-{n}",
            input_tokens=5000,
            cost_usd=0.0001,
        )
        for n in range(2)
    ]
    with LedgerWriter(ledger, spool_path=spool_path) as writer:
        for record in embeddings:
            writer.submit(record)
    completions = _write(tmp_path / "completions.json", _openai_usage())
    costs_body = _openai_costs()
    costs_body["data"][0]["results"].append(
        {
            "object": "organization.costs.result",
            "amount": {"value": 0.0002, "currency": "usd"},
            "line_item": f"{EMBED}, input",
        }
    )
    costs = _write(tmp_path / "costs.json", costs_body)
    base = ["reconcile", "--ledger", ledger, *RANGE, "--no-store", "--all", "-f", "json"]

    code, out, err = run_cli([*base, "--report", completions], capsys)
    assert code == 0, out
    assert "9 lines compared, match" in err  # 3 (day, model) keys x requests, input, output
    assert EMBED not in out

    embedded = _write(tmp_path / "embeddings.json", _embeddings_usage(10_000))
    code, out, err = run_cli([*base, "--report", completions, "--report", embedded, "--report", costs], capsys)
    assert code == 0, out
    assert "15 lines compared, match" in err
    assert [(x["measure"], x["ledger"], x["provider"]) for x in json.loads(out) if x["model"] == EMBED] == [
        ("requests", 2.0, 2.0),
        ("input_tokens", 10_000.0, 10_000.0),
        ("cost_usd", 0.0002, 0.0002),
    ]

    wrong = _write(tmp_path / "embeddings-wrong.json", _embeddings_usage(9_000))
    code, out, _ = run_cli([*base, "--report", completions, "--report", wrong], capsys)
    assert code == 1
    assert [(x["day"], x["model"], x["measure"]) for x in json.loads(out) if x["mismatch"]] == [
        ("2026-01-01", EMBED, "input_tokens")
    ]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--threshold-usd", "nan"], "--threshold-usd: nan is not a finite number >= 0"),
        (["--threshold-usd", "inf"], "--threshold-usd: inf is not a finite number >= 0"),
        (["--threshold-usd", "-0.5"], "--threshold-usd: -0.5 is not a finite number >= 0"),
        (["--threshold-tokens", "-1"], "--threshold-tokens: -1 is not a whole number from 0 to 9223372036854775807"),
        (
            ["--until", "9999-12-31T23:00:00-05:00"],
            "--until: '9999-12-31T23:00:00-05:00' is outside the UTC years 1 to 9999",
        ),
    ],
)
def test_bad_option_values_are_one_line_errors(
    ledger: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], option: list[str], message: str
) -> None:
    # With --threshold-usd nan this $0.50 difference used to be a "match" (every comparison with NaN is false).
    costs = _write(tmp_path / "costs.json", _openai_costs(mini_day1_usd=1.25))
    argv = ["reconcile", "--ledger", ledger, "--report", costs, "--since", "2026-01-01", "--include-today"]
    code, out, err = run_cli([*argv, *option], capsys)
    assert (code, out, err) == (2, "", f"genai-meter reconcile: {message}\n")


def test_reconcile_refuses_thresholds_that_are_not_amounts(ledger: str) -> None:
    from genai_meter.ledger import ProviderFigures, QueryError, add_report, reconcile

    figures = ProviderFigures()
    add_report(_openai_costs(), "costs", figures)
    with open_ledger(ledger) as reader, pytest.raises(QueryError, match="threshold_usd: nan is not a finite number"):
        reconcile(reader, figures, since_day="2026-01-01", until_day="2026-01-03", threshold_usd=float("nan"))


def test_fetch_from_fake_provider(
    ledger: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from genai_meter.fake_provider import FakeProvider

    with FakeProvider() as fake:
        fake.set_report("/v1/organization/usage/completions", _openai_usage())
        fake.set_report("/v1/organization/costs", _openai_costs(mini_day1_usd=0.8))
        monkeypatch.delenv("OPENAI_ADMIN_KEY", raising=False)
        code, _, err = run_cli(
            ["reconcile", "--ledger", ledger, "--provider", "openai", "--base-url", fake.openai_base_url, *RANGE],
            capsys,
        )
        assert code == 2 and "OPENAI_ADMIN_KEY is not set" in err
        monkeypatch.setenv("OPENAI_ADMIN_KEY", "sk-admin-test")
        code, out, err = run_cli(
            [
                "reconcile",
                "--ledger",
                ledger,
                "--provider",
                "openai",
                "--base-url",
                fake.openai_base_url,
                *RANGE,
                "-f",
                "csv",
            ],
            capsys,
        )
        assert code == 1, err
        assert out.splitlines()[1].startswith(f"2026-01-02,{MINI},cost_usd,0.75,0.8,")
        admin = [r for r in fake.requests if "/organization/" in r.path]
        assert {r.path for r in admin} == {"/v1/organization/usage/completions", "/v1/organization/costs"}
        assert all(r.headers.get("authorization") == "Bearer sk-admin-test" for r in admin)


def test_closed_days_only_by_default(ledger: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    usage = _write(tmp_path / "usage.json", _openai_usage())
    code, _, err = run_cli(["reconcile", "--ledger", ledger, "--report", usage, "--since", "today"], capsys)
    assert code == 2 and "no closed UTC day" in err


def _anthropic_cost(*results: dict[str, Any]) -> dict[str, Any]:
    bucket = {"starting_at": "2026-01-01T00:00:00Z", "ending_at": "2026-01-02T00:00:00Z", "results": list(results)}
    return {"data": [bucket], "has_more": False, "next_page": None}


def _cents(amount: str, cost_type: str = "tokens", model: str | None = SONNET) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD", "cost_type": cost_type, "model": model, "description": "d"}


def test_non_token_costs_are_lines_of_their_own(
    ledger: str, spool_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A web search or code execution cost (model null) used to be keyed "*" and fold every model's
    ledger cost of its day into one line: $1.00 against $0.035, and each model $0 against its cost."""
    haiku = "claude-haiku-4-5"
    with LedgerWriter(ledger, spool_path=spool_path) as writer:
        writer.submit(_call(0, haiku, 70, provider="anthropic"))
    base = ["reconcile", "--ledger", ledger, *RANGE, "--no-store", "--all", "-f", "json"]
    by_model = _anthropic_cost(
        _cents("50", model=SONNET),
        _cents("25", model=haiku),
        _cents("1", "web_search", None),
        _cents("2.5", "code_execution", None),
    )
    code, out, err = run_cli([*base, "--report", _write(tmp_path / "c.json", by_model)], capsys)
    assert code == 1, err
    assert "4 lines compared, 1 mismatch(es)" in err
    got = [(x["model"], x["ledger"], x["provider"], x["mismatch"]) for x in json.loads(out)]
    assert got == [
        (haiku, 0.25, 0.25, False),
        (SONNET, 0.5, 0.5, False),
        ("code_execution", 0.0, 0.025, True),
        ("web_search", 0.0, 0.01, False),
    ]

    # A report not grouped by model is still compared per day, the non-token costs beside it.
    per_day = _anthropic_cost(_cents("75", model=None), _cents("1", "web_search", None))
    code, out, err = run_cli([*base, "--report", _write(tmp_path / "d.json", per_day)], capsys)
    assert code == 0, err
    got = [(x["model"], x["ledger"], x["provider"]) for x in json.loads(out)]
    assert got == [("*", 0.75, 0.75), ("web_search", 0.0, 0.01)]


def test_fetched_reports_without_results_say_zero(
    ledger: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Buckets with no results (another organisation's key, usage not yet reported) used to cover no
    measure: "0 lines compared, match", exit 0, though the ledger holds spend on those days."""
    from genai_meter.fake_provider import FakeProvider

    def empty(start: int) -> dict[str, Any]:
        bucket = {"object": "bucket", "start_time": start, "end_time": start + 86400, "results": []}
        return {"object": "page", "data": [bucket], "has_more": False, "next_page": None}

    monkeypatch.setenv("OPENAI_ADMIN_KEY", "sk-admin-test")
    with FakeProvider() as fake:
        fake.set_report("/v1/organization/usage/completions", empty(int(DAY1) + 86400))
        fake.set_report("/v1/organization/costs", empty(int(DAY1) + 86400))
        argv = ["reconcile", "--ledger", ledger, "--provider", "openai", "--base-url", fake.openai_base_url]
        code, out, err = run_cli([*argv, "--since", "2026-01-02", "--until", "2026-01-03", "-f", "json"], capsys)
    assert code == 1, err
    assert "4 lines compared, 4 mismatch(es)" in err
    got = [(x["day"], x["model"], x["measure"], x["ledger"], x["provider"]) for x in json.loads(out)]
    assert got == [
        ("2026-01-02", MINI, "requests", 3.0, 0.0),
        ("2026-01-02", MINI, "input_tokens", 3000.0, 0.0),
        ("2026-01-02", MINI, "output_tokens", 300.0, 0.0),
        ("2026-01-02", MINI, "cost_usd", 0.75, 0.0),
    ]


def test_cost_sums_are_rounded(
    ledger_url: str, spool_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A day reported without line items is compared with the ledger's models summed: $0.10 + $0.20
    gave 0.30000000000000004; differences (0.75 - 0.8 = -0.050000000000000044) and the run's
    totals were as noisy. All are rounded as reports are (usd_sum)."""
    calls = [("a", 0, 0.1), ("b", 0, 0.2), ("a", 1, 0.75)]
    with LedgerWriter(ledger_url, spool_path=spool_path) as writer:
        for n, (model, day, usd) in enumerate(calls):
            writer.submit(
                CallRecord(
                    time=DAY1 + day * 86400 + n,
                    provider="openai",
                    operation="chat",
                    request_model=model,
                    response_id=f"r{n}",
                    cost_usd=usd,
                )
            )

    def bucket(day: int, result: dict[str, Any]) -> dict[str, Any]:
        return {"start_time": int(DAY1) + day * 86400, "end_time": int(DAY1) + (day + 1) * 86400, "results": [result]}

    whole_day = {"object": "organization.costs.result", "amount": {"value": 0.3, "currency": "usd"}}
    model_a = {**whole_day, "amount": {"value": 0.8, "currency": "usd"}, "line_item": "a, input"}
    costs = _write(tmp_path / "costs.json", {"data": [bucket(0, whole_day), bucket(1, model_a)]})
    code, out, err = run_cli(
        ["reconcile", "--ledger", ledger_url, "--report", costs, *RANGE, "--all", "-f", "json"], capsys
    )
    assert code == 1, err
    assert [list(line.values()) for line in json.loads(out)] == [
        ["2026-01-01", "*", "cost_usd", 0.3, 0.3, 0.0, False],
        ["2026-01-02", "a", "cost_usd", 0.75, 0.8, -0.05, True],
    ]
    with open_ledger(ledger_url) as reader:
        [run] = reader.db.fetch_all("SELECT ledger_cost_usd, provider_cost_usd FROM genai_meter_reconciliations")
        [line] = reader.db.fetch_all("SELECT difference FROM genai_meter_reconciliation_lines WHERE mismatch")
    assert (float(run[0]), float(run[1]), float(line[0])) == (1.05, 1.1, -0.05)


def test_a_bucket_in_two_reports_counts_once(ledger: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two saved exports sharing a day (or one file passed twice) added that day's figures twice."""
    full = _openai_usage()
    first = _write(tmp_path / "first.json", {"data": full["data"]})  # days 0 and 1
    second = _write(tmp_path / "second.json", {"data": full["data"][1:]})  # day 1 again
    base = ["reconcile", "--ledger", ledger, *RANGE, "--no-store", "--all", "-f", "json"]
    for reports in ([first, second], [first, first]):
        code, out, err = run_cli([*base, *(x for path in reports for x in ("--report", path))], capsys)
        assert code == 0, out
        assert "9 lines compared, match" in err
        day1 = [(x["model"], x["measure"], x["provider"]) for x in json.loads(out) if x["day"] == "2026-01-02"]
        assert day1 == [(MINI, "requests", 3.0), (MINI, "input_tokens", 3000.0), (MINI, "output_tokens", 300.0)]

    # The same bucket with other figures: one of them is wrong, and which is not ours to guess.
    later = _openai_usage(extra_mini_day1=7)
    third = _write(tmp_path / "third.json", {"data": later["data"][1:]})
    code, out, err = run_cli([*base, "--report", first, "--report", third], capsys)
    assert (code, out) == (2, "")
    assert err == (
        f"genai-meter reconcile: {third}: $.data[0]: the openai usage completions bucket of 2026-01-02"
        f" (start {int(DAY1) + 86400}) is also in {first}: $.data[1], with different results;"
        " pass only one of the two reports\n"
    )
