"""End to end: a real Prometheus scrapes an app with known spend and evaluates the shipped rules.

Every PromQL expression of every dashboard panel must return data, the per-user spend Prometheus
reports must equal the known spend, and the budget-exhausted alert must reach `firing`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from genai_meter import names
from genai_meter._prometheus_server import PrometheusProcess
from genai_meter.monitoring import _rules

from . import _feed, _grafana
from .conftest import DASHBOARDS_DIR

pytestmark = pytest.mark.timeout(90)

RULES = DASHBOARDS_DIR / "rules" / _rules.RULES_FILE
ALL = ".*"  # the dashboards' "All" value


@pytest.fixture(scope="module")
def stack(binary: Callable[[str], str]) -> Iterator[tuple[PrometheusProcess, float]]:
    """Prometheus scraping the known-spend app after its counters moved from 0 to their totals.

    Yields the Prometheus and the timestamp of the scrape that saw the totals."""
    binary("prometheus")
    app = _feed.KnownSpendApp()
    prom = PrometheusProcess([app.target], rule_files=[RULES], scrape_interval="1s")
    try:
        prom.start()
        cost = names.COST.prometheus_name
        prom.wait_for(lambda: len(prom.query(cost)) == len(_feed.CALLS), what="the zero samples")
        app.spend()
        total = sum(c.cost for c in _feed.CALLS)
        prom.wait_for(
            lambda: [s for s in prom.query(f"sum({cost})") if math.isclose(float(s["value"][1]), total)],
            what="the known totals",
        )
        prom.wait_for(
            lambda: prom.query(f"count_over_time({cost}[1m]) >= 4"), what="a few scrapes of the totals"
        )
        last_scrape = max(float(s["value"][1]) for s in prom.query(f"timestamp({cost})"))
        yield prom, last_scrape
    finally:
        prom.stop()
        app.close()


def _values(result: list[dict[str, Any]]) -> list[float]:
    return [float(s["value"][1]) for s in result]


def test_every_panel_query_returns_data(stack: tuple[PrometheusProcess, float]) -> None:
    prom, _ = stack
    dashboards = _grafana.load(DASHBOARDS_DIR / "json")
    empty = []
    checked = 0
    for target in _grafana.targets(dashboards):
        expr = _grafana.substitute(target.expr, _all_values(dashboards[target.dashboard]))
        values = _values(prom.query(expr))
        checked += 1
        if not [v for v in values if math.isfinite(v)]:
            empty.append(f"{target} -> {values}")
    assert checked >= 40
    assert empty == []


def test_every_variable_query_finds_values(stack: tuple[PrometheusProcess, float]) -> None:
    prom, _ = stack
    for name, model in _grafana.load(DASHBOARDS_DIR / "json").items():
        for var in _grafana.variables(model):
            if var["type"] != "query":
                continue
            metric, label = var["query"].removeprefix("label_values(").removesuffix(")").rsplit(", ", 1)
            result = prom.query(_grafana.substitute(metric, _all_values(model)))
            assert {s["metric"].get(label) for s in result} - {None}, f"{name}: ${var['name']} has no values"


def test_per_user_spend_equals_known_spend(stack: tuple[PrometheusProcess, float]) -> None:
    prom, last_scrape = stack
    model = _grafana.load(DASHBOARDS_DIR / "json")["per-user"]
    (target,) = [t for t in _grafana.targets({"per-user": model}) if t.panel == "Spend in range by user"]
    reported = {
        (s["metric"][names.LABEL_TENANT], s["metric"][names.LABEL_USER]): float(s["value"][1])
        for s in prom.query(_grafana.substitute(target.expr, _all_values(model)), at=last_scrape)
    }
    known = _feed.known_spend_by_user()
    assert reported.keys() == known.keys()
    for who, spend in known.items():
        assert reported[who] == pytest.approx(spend, abs=1e-9), who

    # One user picked with the dashboard's variables.
    alice = prom.query(_grafana.substitute(target.expr, {"tenant": "acme", "user": "alice"}), at=last_scrape)
    assert _values(alice) == [pytest.approx(known[("acme", "alice")], abs=1e-9)]


def test_recording_rule_reports_budget_use(stack: tuple[PrometheusProcess, float]) -> None:
    prom, _ = stack
    result = prom.wait_for_query(f"{_rules.BUDGET_USAGE} > 0.03")
    use = {
        (s["metric"][names.LABEL_BUDGET], s["metric"][names.LABEL_SCOPE_VALUE]): float(s["value"][1])
        for s in result
    }
    assert use == {
        ("daily-user", "alice"): pytest.approx(3.234567891 / 3.0, abs=1e-12),
        ("monthly-tenant", "acme"): pytest.approx(3.734567891 / 100.0, abs=1e-12),
    }


def test_budget_exhausted_alert_fires(stack: tuple[PrometheusProcess, float]) -> None:
    prom, _ = stack
    who = {names.LABEL_BUDGET: "daily-user", names.LABEL_SCOPE_VALUE: "alice"}
    alert = prom.wait_for_alert(_rules.BUDGET_100.name, state="firing", timeout=30, **who)
    assert alert["labels"][_rules.SEVERITY] == _rules.CRITICAL
    assert alert["annotations"] == _rules.BUDGET_100.expected_annotations(who, "107.8%")
    # The lower tiers are active for the same budget too (Alertmanager inhibits them).
    active = {(a["labels"]["alertname"], a["labels"].get(names.LABEL_SCOPE_VALUE)) for a in prom.alerts()}
    assert {(_rules.BUDGET_75.name, "alice"), (_rules.BUDGET_90.name, "alice")} <= active
    assert not [a for a in prom.alerts() if a["labels"].get(names.LABEL_SCOPE_VALUE) == "acme"]


def _all_values(model: dict[str, Any]) -> dict[str, str]:
    return {v["name"]: ALL for v in _grafana.variables(model) if v["type"] == "query"}
