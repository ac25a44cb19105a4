"""End to end: a real Prometheus scrapes an app with known spend and evaluates the shipped rules.

Every PromQL expression of every dashboard panel must return data, the amounts the range panels
report must equal the known amounts (every counter series is born inside the range already holding
its first calls, as with the real app), and the budget-exhausted alert must reach `firing`.
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
    """Prometheus scraping the known-spend app: no counter series, then the first calls, then the totals.

    Yields the Prometheus and the timestamp of a scrape that saw the totals."""
    binary("prometheus")
    app = _feed.KnownSpendApp()
    prom = PrometheusProcess([app.target], rule_files=[RULES], scrape_interval="1s")
    try:
        prom.start()
        cost = names.COST.prometheus_name
        prom.wait_for(lambda: prom.query("up == 1"), what="a scrape before any call")
        assert prom.query(cost) == []
        app.first_calls()
        prom.wait_for(
            lambda: prom.query(f"count(count_over_time({cost}[1m]) >= 2) == {len(_feed.CALLS)}"),
            what="two scrapes of the first calls",
        )
        app.spend()
        total = sum(c.cost for c in _feed.CALLS)
        prom.wait_for(
            lambda: [s for s in prom.query(f"sum({cost})") if math.isclose(float(s["value"][1]), total)],
            what="the known totals",
        )
        seen = max(float(s["value"][1]) for s in prom.query(f"timestamp({cost})"))
        prom.wait_for(
            lambda: max(float(s["value"][1]) for s in prom.query(f"timestamp({cost})")) >= seen + 3,
            what="a few scrapes of the totals",
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


def _panel(dashboards: dict[str, dict[str, Any]], dashboard: str, title: str) -> str:
    (target,) = [t for t in _grafana.targets({dashboard: dashboards[dashboard]}) if t.panel == title]
    return target.expr


def _by(result: list[dict[str, Any]], *labels: str) -> dict[tuple[str, ...], float]:
    return {tuple(s["metric"][label] for label in labels): float(s["value"][1]) for s in result}


def test_range_panels_count_what_a_series_held_when_it_appeared(
    stack: tuple[PrometheusProcess, float],
) -> None:
    """Every series was born inside the range with its first calls already counted; increase() alone
    misses what the first scrape saw (a one-call user showed $0, the first threshold crossing never)."""
    prom, last_scrape = stack
    dashboards = _grafana.load(DASHBOARDS_DIR / "json")
    # Time-series panels counting per interval: an interval covering the test's whole history.
    whole = {"__rate_interval": _grafana.BUILTINS["__range"]}

    def query(dashboard: str, title: str, **values: str) -> list[dict[str, Any]]:
        expr = _panel(dashboards, dashboard, title)
        values = {**_all_values(dashboards[dashboard]), **values}
        return prom.query(_grafana.substitute(expr, values), at=last_scrape)

    total = sum(c.cost for c in _feed.CALLS)
    calls = sum(sum(c.outcomes.values()) for c in _feed.CALLS)
    for dashboard, title in (("overview", "Spend in range"), ("per-user", "Spend in range")):
        assert _values(query(dashboard, title)) == [pytest.approx(total, abs=1e-9)], (dashboard, title)
    # The last hour's spend: the test's whole history.
    assert _values(query("overview", "Burn rate (USD/h)")) == [pytest.approx(total, abs=1e-9)]
    assert _values(query("per-user", "Calls in range")) == [pytest.approx(calls, abs=1e-9)]

    by_model: dict[tuple[str, ...], float] = {}
    for call in _feed.CALLS:
        by_model[(call.model,)] = by_model.get((call.model,), 0.0) + call.cost
    reported = _by(query("overview", "Spend in range by model"), names.LABEL_MODEL)
    assert reported == {k: pytest.approx(v, abs=1e-9) for k, v in by_model.items()}

    crossings = _by(
        query("budgets", "Threshold crossings in range"),
        names.LABEL_BUDGET,
        names.LABEL_SCOPE_VALUE,
        names.LABEL_THRESHOLD,
    )
    assert crossings == {k: pytest.approx(n) for k, n in _feed.CROSSINGS.items()}
    blocked = _by(query("budgets", "Blocked calls", **whole), names.LABEL_BUDGET, names.LABEL_SCOPE_VALUE)
    assert blocked == {k: pytest.approx(n) for k, n in _feed.BLOCKED.items()}

    outcomes: dict[tuple[str, ...], float] = {}
    for call in _feed.CALLS:
        for outcome, n in call.outcomes.items():
            if n and outcome != names.OUTCOME_OK:
                outcomes[(outcome,)] = outcomes.get((outcome,), 0) + n
    reported = _by(query("overview", "Errors, blocked and unpriced calls", **whole), names.LABEL_OUTCOME)
    assert reported == {k: pytest.approx(n) for k, n in outcomes.items()}


def test_the_feed_exports_like_the_real_app(stack: tuple[PrometheusProcess, float]) -> None:
    """No zero warm-up: increase() alone reads less than the known spend, so the panels must not rely
    on it (a feed that published 0 before spending made increase() exact and hid the bug)."""
    prom, last_scrape = stack
    cost = names.COST.prometheus_name
    assert prom.query(f"{cost} == 0", at=last_scrape) == []
    (plain,) = _values(prom.query(f"sum(increase({cost}[5m]))", at=last_scrape))
    assert plain < sum(c.cost for c in _feed.CALLS) - 0.1


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
