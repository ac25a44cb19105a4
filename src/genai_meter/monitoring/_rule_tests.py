"""`promtool test rules` unit tests for the alert rules: every alert shown firing and not firing.

Built from the same `Alert` objects as the rule file, so expected labels and annotations follow any
rename in `genai_meter.names` without hand edits.
"""

from __future__ import annotations

from typing import Any

from genai_meter import names
from genai_meter.monitoring import _promql as q
from genai_meter.monitoring import _rules as r


def _series(metric: str, values: str, **labels: str) -> dict[str, str]:
    return {"series": q.selector(metric, **labels), "values": values}


def _expect(alert: r.Alert, labels: dict[str, str], value: str = "") -> dict[str, Any]:
    return {
        "exp_labels": {**labels, r.SEVERITY: alert.severity},
        "exp_annotations": alert.expected_annotations(labels, value),
    }


def _budget(budget: str, who: str) -> dict[str, str]:
    return {q.BUDGET: budget, q.SCOPE_VALUE: who}


def budgets() -> dict[str, Any]:
    """Four users on one daily budget at 80, 95, 120 (from 6m, 90 % before) and 50 %; two processes
    report carol's budget. A budget with a zero limit must never alert."""
    users = {"alice": "8", "bob": "9.5", "carol": "12", "dave": "5"}
    carol = "9x5 12x25"
    series = []
    for who, spend in users.items():
        labels = _budget("daily-user", who)
        series.append(_series(q.BUDGET_LIMIT, "10x30", **labels, instance="a"))
        series.append(
            _series(q.BUDGET_SPEND, carol if who == "carol" else f"{spend}x30", **labels, instance="a")
        )
    series.append(_series(q.BUDGET_LIMIT, "10x30", **_budget("daily-user", "carol"), instance="b"))
    series.append(_series(q.BUDGET_SPEND, carol, **_budget("daily-user", "carol"), instance="b"))
    series.append(_series(q.BUDGET_LIMIT, "0x30", **_budget("free-tier", "erin")))
    series.append(_series(q.BUDGET_SPEND, "1x30", **_budget("free-tier", "erin")))
    at = {"alice": "80%", "bob": "95%", "carol": "120%"}

    def firing(alert: r.Alert, who: tuple[str, ...]) -> list[dict[str, Any]]:
        return [_expect(alert, _budget("daily-user", w), at[w]) for w in who]

    return {
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            # Pending, not firing, before `for:` has passed; the critical tier has no `for:` and fires
            # at the first evaluation that sees 100 %.
            {"eval_time": "4m", "alertname": r.BUDGET_75.name, "exp_alerts": []},
            {"eval_time": "0m", "alertname": r.BUDGET_90.name, "exp_alerts": []},
            {"eval_time": "5m", "alertname": r.BUDGET_100.name, "exp_alerts": []},
            {
                "eval_time": "6m",
                "alertname": r.BUDGET_100.name,
                "exp_alerts": firing(r.BUDGET_100, ("carol",)),
            },
            {
                "eval_time": "10m",
                "alertname": r.BUDGET_75.name,
                "exp_alerts": firing(r.BUDGET_75, ("alice", "bob", "carol")),
            },
            {
                "eval_time": "10m",
                "alertname": r.BUDGET_90.name,
                "exp_alerts": firing(r.BUDGET_90, ("bob", "carol")),
            },
            {
                "eval_time": "10m",
                "alertname": r.BUDGET_100.name,
                "exp_alerts": firing(r.BUDGET_100, ("carol",)),
            },
        ],
        "promql_expr_test": [
            {
                "expr": r.BUDGET_USAGE,
                "eval_time": "10m",
                "exp_samples": [
                    {"labels": q.selector(r.BUDGET_USAGE, **_budget("daily-user", w)), "value": float(s) / 10}
                    for w, s in users.items()
                ],
            }
        ],
    }


def blocked_calls() -> dict[str, Any]:
    """acme's first blocked call (a new series at 1) at 5m, a second at 7m; beta's count is old news."""
    acme, beta = _budget("monthly-tenant", "acme"), _budget("monthly-tenant", "beta")
    return {
        "interval": "1m",
        "input_series": [
            _series(q.BUDGET_BLOCKED, "_x5 1 1 2x40", **acme),
            _series(q.BUDGET_BLOCKED, "_x20 3x30", **beta),
        ],
        "alert_rule_test": [
            {"eval_time": "3m", "alertname": r.BLOCKED_CALLS.name, "exp_alerts": []},
            {
                "eval_time": "9m",
                "alertname": r.BLOCKED_CALLS.name,
                "exp_alerts": [_expect(r.BLOCKED_CALLS, acme)],
            },
            # beta appeared at 20m with calls already blocked: it fires until 10m later; acme is quiet.
            {
                "eval_time": "25m",
                "alertname": r.BLOCKED_CALLS.name,
                "exp_alerts": [_expect(r.BLOCKED_CALLS, beta)],
            },
            {"eval_time": "40m", "alertname": r.BLOCKED_CALLS.name, "exp_alerts": []},
        ],
    }


def unpriced_calls() -> dict[str, Any]:
    """gpt-x appears at 10m with one unpriced call; gpt-y counts again at 50m after a quiet half hour."""
    x = {q.PROVIDER: "openai", q.MODEL: "gpt-x"}
    y = {q.PROVIDER: "openai", q.MODEL: "gpt-y"}
    return {
        "interval": "1m",
        "input_series": [
            _series(q.UNPRICED, "_x10 1x70", **x),
            _series(q.UNPRICED, "3x50 4x30", **y),
        ],
        "alert_rule_test": [
            {
                "eval_time": "15m",
                "alertname": r.UNPRICED_CALLS.name,
                "exp_alerts": [_expect(r.UNPRICED_CALLS, x), _expect(r.UNPRICED_CALLS, y)],
            },
            {"eval_time": "45m", "alertname": r.UNPRICED_CALLS.name, "exp_alerts": []},
            {
                "eval_time": "55m",
                "alertname": r.UNPRICED_CALLS.name,
                "exp_alerts": [_expect(r.UNPRICED_CALLS, y)],
            },
        ],
    }


def error_rate() -> dict[str, Any]:
    """gpt-bad fails 10 calls in 110 (9.091 %), gpt-good 1 in 101; blocked calls are not calls sent."""
    bad = {q.PROVIDER: "openai", q.MODEL: "gpt-bad"}
    good = {q.PROVIDER: "openai", q.MODEL: "gpt-good"}
    ok, err, blocked = (
        {q.OUTCOME: names.OUTCOME_OK},
        {q.OUTCOME: names.OUTCOME_ERROR},
        {q.OUTCOME: names.OUTCOME_BLOCKED},
    )
    return {
        "interval": "1m",
        "input_series": [
            _series(q.REQUESTS, "0+100x40", **bad, **ok),
            _series(q.REQUESTS, "0+10x40", **bad, **err),
            _series(q.REQUESTS, "0+100x40", **good, **ok),
            _series(q.REQUESTS, "0+1x40", **good, **err),
            _series(q.REQUESTS, "0+500x40", **good, **blocked),
        ],
        "alert_rule_test": [
            {"eval_time": "8m", "alertname": r.ERROR_RATE.name, "exp_alerts": []},
            {
                "eval_time": "20m",
                "alertname": r.ERROR_RATE.name,
                "exp_alerts": [_expect(r.ERROR_RATE, bad, "9.091%")],
            },
        ],
    }


def spend_spike() -> dict[str, Any]:
    """A week at 3 USD/h, then acme jumps to 30 USD/h; steady stays flat; tiny jumps 10x but stays
    under the floor. Five-minute steps keep promtool's week of rule evaluations quick."""
    acme, steady, tiny = ({q.TENANT: t} for t in ("acme", "steady", "tiny"))
    week = 7 * 24 * 12  # five-minute steps
    return {
        "interval": "5m",
        "input_series": [
            _series(q.COST, f"0+0.25x{week} {week * 0.25 + 2.5:g}+2.5x24", **acme),
            _series(q.COST, f"0+0.25x{week + 24}", **steady),
            _series(q.COST, f"0+0.005x{week} {week * 0.005 + 0.05:g}+0.05x24", **tiny),
        ],
        "alert_rule_test": [
            {"eval_time": "168h", "alertname": r.SPEND_SPIKE.name, "exp_alerts": []},
            {
                "eval_time": "170h",
                "alertname": r.SPEND_SPIKE.name,
                "exp_alerts": [_expect(r.SPEND_SPIKE, acme, "30.00")],
            },
        ],
    }


TEST_FILES = {
    "budgets.test.yml": budgets,
    "blocked-calls.test.yml": blocked_calls,
    "unpriced-calls.test.yml": unpriced_calls,
    "error-rate.test.yml": error_rate,
    "spend-spike.test.yml": spend_spike,
}


def test_file(name: str) -> dict[str, Any]:
    body = TEST_FILES[name]()
    return {
        "rule_files": [f"../{r.RULES_FILE}"],
        "evaluation_interval": body["interval"],
        "tests": [body],
    }
