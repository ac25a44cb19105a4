"""The shipped rule file: promtool check and unit tests, naming, annotations and runbook links."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from typing import Any

import yaml

from genai_meter import names
from genai_meter.monitoring import _rule_tests, _rules

from .conftest import DASHBOARDS_DIR, DOCS_DIR

RULES_DIR = DASHBOARDS_DIR / "rules"
RULE_FILE = RULES_DIR / _rules.RULES_FILE


def _rules_yaml() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(RULE_FILE.read_text())
    return data


def _all_rules() -> list[dict[str, Any]]:
    return [rule for group in _rules_yaml()["groups"] for rule in group["rules"]]


def test_promtool_check_rules(binary: Callable[[str], str]) -> None:
    result = subprocess.run(
        [binary("promtool"), "check", "rules", str(RULE_FILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_all_rules())} rules found" in result.stdout


def test_promtool_test_rules(binary: Callable[[str], str]) -> None:
    tests = sorted((RULES_DIR / "tests").glob("*.yml"))
    assert len(tests) == len(_rule_tests.TEST_FILES)
    result = subprocess.run(
        [binary("promtool"), "test", "rules", *map(str, tests)],
        capture_output=True,
        text=True,
        check=False,
        cwd=RULES_DIR / "tests",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(tests)


def test_every_alert_is_shown_firing_and_not_firing() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for name in _rule_tests.TEST_FILES:
        for test in _rule_tests.test_file(name)["tests"]:
            for case in test["alert_rule_test"]:
                (firing if case["exp_alerts"] else quiet).add(case["alertname"])
    every = {a.name for a in _rules.ALERTS}
    assert firing == every
    assert quiet == every


def test_recording_rules_are_named_level_metric_operations() -> None:
    records = [r["record"] for r in _all_rules() if "record" in r]
    assert records
    for record in records:
        assert re.fullmatch(r"[a-z_]+:[a-z_]+:[a-z0-9_]+", record), record


def test_alerts_have_severity_annotations_and_for() -> None:
    alerts = [r for r in _all_rules() if "alert" in r]
    assert [a["alert"] for a in alerts] == [a.name for a in _rules.ALERTS]
    for alert in alerts:
        assert alert["labels"]["severity"] in (_rules.INFO, _rules.WARNING, _rules.CRITICAL)
        assert set(alert["annotations"]) == {"summary", "description", "runbook_url"}
        assert re.fullmatch(r"\d+[smh]", alert["for"]), alert["alert"]


def test_budget_tiers() -> None:
    tiers = {a.name: (a.severity, a.expr) for a in _rules.BUDGET_TIERS}
    assert tiers == {
        _rules.BUDGET_75.name: ("info", f"{_rules.BUDGET_USAGE} >= 0.75"),
        _rules.BUDGET_90.name: ("warning", f"{_rules.BUDGET_USAGE} >= 0.9"),
        _rules.BUDGET_100.name: ("critical", f"{_rules.BUDGET_USAGE} >= 1"),
    }
    budget_gauges = (names.BUDGET_SPEND.prometheus_name, names.BUDGET_LIMIT.prometheus_name)
    (usage,) = [r["expr"] for r in _all_rules() if r.get("record") == _rules.BUDGET_USAGE]
    assert all(g in usage for g in budget_gauges)


def test_runbook_urls_point_at_runbook_headings() -> None:
    runbook = (DOCS_DIR / "runbook.md").read_text()
    anchors = {_github_anchor(h) for h in re.findall(r"^#+ (.+)$", runbook, flags=re.M)}
    for alert in _rules.ALERTS:
        base, anchor = alert.runbook_url.split("#")
        assert base.endswith("/docs/runbook.md")
        assert anchor in anchors, f"docs/runbook.md has no heading for {alert.name}"


def _github_anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
