"""Structure of the generated Grafana JSON, and every query parsed by promtool."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from genai_meter import names
from genai_meter.monitoring import _promql as q

from . import _grafana
from .conftest import DASHBOARDS_DIR

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
DASHBOARDS = _grafana.load(DASHBOARDS_DIR / "json")
TARGETS = _grafana.targets(DASHBOARDS)

# Every series name a query may use: what names.py says Prometheus shows, plus histogram suffixes.
KNOWN_SERIES = {m.prometheus_name for m in names.ALL_METRICS} | {
    f"{m.prometheus_name}_{suffix}"
    for m in (names.TOKEN_USAGE, names.OPERATION_DURATION)
    for suffix in ("bucket", "sum", "count")
}
KNOWN_LABELS = {
    *(label for m in names.ALL_METRICS for label in m.labels),
    *(
        names.prometheus_label(label)
        for m in (names.TOKEN_USAGE, names.OPERATION_DURATION)
        for label in m.labels
    ),
    "le",
}


def test_four_dashboards_with_unique_uids() -> None:
    assert sorted(DASHBOARDS) == ["budgets", "models", "overview", "per-user"]
    uids = [d["uid"] for d in DASHBOARDS.values()]
    assert len(set(uids)) == 4


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_datasource_is_a_variable_everywhere(name: str) -> None:
    model = DASHBOARDS[name]
    (ds_var,) = [v for v in _grafana.variables(model) if v["name"] == "datasource"]
    assert ds_var["type"] == "datasource" and ds_var["query"] == "prometheus"
    for var in _grafana.variables(model):
        if var["type"] == "query":
            assert var["datasource"] == DATASOURCE, var["name"]
    for panel in _grafana.panels(model):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert target["expr"].strip(), panel["title"]


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_panels_fit_the_grid_and_have_unique_ids(name: str) -> None:
    panels = list(_grafana.panels(DASHBOARDS[name]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]


def test_queries_use_only_series_and_labels_from_names() -> None:
    for target in TARGETS:
        series = set(re.findall(r"\b(?:genai_meter|gen_ai)_[a-z_]+\b", target.expr)) - KNOWN_LABELS
        assert series <= KNOWN_SERIES, target
        grouped = {
            label.strip()
            for group in re.findall(r"\b(?:by|on) \(([^)]*)\)", target.expr)
            for label in group.split(",")
        }
        matched = set(re.findall(r"(\w+)(?:=~|!~|!=|=)\"", target.expr))
        assert grouped | matched <= KNOWN_LABELS, target


def test_counters_are_read_as_amounts_or_rates() -> None:
    """rate() (a pace) or `sum_amount` (increase() plus the whole value of a series born inside the
    window); never raw, nor with increase() alone, which misses what a series' first sample holds."""
    counters = [m.prometheus_name for m in names.ALL_METRICS if m.prometheus_name.endswith("_total")]
    for target in TARGETS:
        expr = target.expr
        for series, window in re.findall(r"increase\(([a-z_]+(?:\{[^}]*\})?)\[([^\]]+)\]\)", target.expr):
            arms = q.sum_amount(series, window).removeprefix("sum ")
            assert arms in expr, f"increase() without the arm for series born in the window: {target}"
            expr = expr.replace(arms, "")
        for counter in counters:
            for match in re.finditer(rf"\b{counter}\b", expr):
                assert re.search(r"rate\($", expr[: match.start()]), f"raw counter {counter} in {target}"


def test_cost_panels_show_usd() -> None:
    for model in DASHBOARDS.values():
        for panel in _grafana.panels(model):
            exprs = " ".join(t["expr"] for t in panel.get("targets", []))
            if q.COST in exprs and "/" not in exprs:
                defaults = panel["fieldConfig"]["defaults"]
                assert defaults["unit"] == "currencyUSD", panel["title"]
                assert defaults["decimals"] in (2, 4, 6), panel["title"]


def test_per_user_dashboard_has_tenant_and_user_variables() -> None:
    names_ = [v["name"] for v in _grafana.variables(DASHBOARDS["per-user"])]
    assert names_ == ["datasource", "tenant", "user"]


def test_every_query_parses_with_promtool(binary: Callable[[str], str], tmp_path: Path) -> None:
    """promtool has no offline `query` parser in 2.42, but `check rules` parses every expression."""
    promtool = binary("promtool")
    rules: list[dict[str, Any]] = []
    for i, target in enumerate(TARGETS):
        values = {
            v["name"]: ".*" for v in _grafana.variables(DASHBOARDS[target.dashboard]) if v["type"] == "query"
        }
        rules.append({"record": f"panel:query_{i}:check", "expr": _grafana.substitute(target.expr, values)})
    path = tmp_path / "panels.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rules)} rules found" in result.stdout


def test_attribution_variables_list_every_called_value() -> None:
    """Provider, model, tenant and user pickers read the requests counter, which every call has (an
    unpriced model or a failed call has no cost series, so reading the cost counter hid them)."""
    for name, model in DASHBOARDS.items():
        for variable in _grafana.variables(model):
            if variable["type"] == "query" and variable["name"] in ("provider", "model", "tenant", "user"):
                assert variable["query"].startswith(f"label_values({q.REQUESTS}"), (name, variable["query"])


def test_budget_use_by_user_shows_each_budget_once() -> None:
    """One target over users and tenants: two (one per variable) showed every budget twice on All."""
    [panel] = [p for p in _grafana.panels(DASHBOARDS["per-user"]) if p.get("title") == "Budget use"]
    assert len(panel["targets"]) == 1
