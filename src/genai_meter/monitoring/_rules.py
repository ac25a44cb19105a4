"""Prometheus recording and alerting rules for genai-meter, built from `genai_meter.names`.

Budget alerts read the budget gauges (spend / limit per budget and scope value) rather than the
cost counters: the gauges are what the budget guard itself enforces, so an alert and a blocked call
always agree. Thresholds 75 / 90 / 100 % map to severities info / warning / critical, and the
Alertmanager example inhibits the lower tiers for the same budget and scope value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from genai_meter import names
from genai_meter.monitoring import _promql as q

RUNBOOK_URL = "https://github.com/genai-meter/genai-meter/blob/main/docs/runbook.md"
"""Where `runbook_url` annotations point: docs/runbook.md, one heading per alert name."""

RULES_FILE = "genai-meter.rules.yml"

SEVERITY = "severity"
INFO, WARNING, CRITICAL = "info", "warning", "critical"

# Spend spike: the last hour's rate against the week's average rate, ignored below a floor so a
# tenant going from 1 to 5 cents an hour pages nobody.
SPIKE_FACTOR = 3
SPIKE_MIN_USD_PER_HOUR = 1.0
ERROR_RATIO = 0.05


def _metric_stem(prometheus_name: str) -> str:
    """Recording-rule metric part: a counter loses `_total` once rate() has been applied."""
    return prometheus_name.removesuffix("_total")


def _level(labels: tuple[str, ...]) -> str:
    return "_".join(labels)


# --- recording rules: level:metric:operations ----------------------------------------------------
BUDGET_USAGE_METRIC = f"{_metric_stem(q.BUDGET_SPEND).removesuffix('_spend_usd')}_usage"
BUDGET_USAGE = f"{_level(q.BUDGET_KEY)}:{BUDGET_USAGE_METRIC}:ratio"
TENANT_COST_RATE1H = f"{q.TENANT}:{_metric_stem(q.COST)}:rate1h"
_CALL_KEY = (q.PROVIDER, q.MODEL)
REQUESTS_RATE5M = f"{_level(_CALL_KEY)}:{_metric_stem(q.REQUESTS)}:rate5m"
ERRORS_RATIO5M = f"{_level(_CALL_KEY)}:{_metric_stem(q.REQUESTS)}_errors:ratio_rate5m"

# Blocked calls never reach the provider, so they are not part of the error-rate denominator.
_SENT = {q.OUTCOME: f"!={names.OUTCOME_BLOCKED}"}

RECORDING_RULES: tuple[tuple[str, str], ...] = (
    (BUDGET_USAGE, q.budget_usage_ratio()),
    (TENANT_COST_RATE1H, q.sum_rate(q.COST, "1h", (q.TENANT,))),
    (REQUESTS_RATE5M, q.sum_rate(q.selector(q.REQUESTS, **_SENT), "5m", _CALL_KEY)),
    (
        ERRORS_RATIO5M,
        f"{q.sum_rate(q.selector(q.REQUESTS, **{q.OUTCOME: names.OUTCOME_ERROR}), '5m', _CALL_KEY)}"
        f" / {REQUESTS_RATE5M}",
    ),
)


@dataclass(frozen=True)
class Alert:
    """One alerting rule. `summary` and `description` are str.format templates whose fields are
    label names or `value`; they render to Prometheus templates for the rule file and to plain text
    for the expected annotations of the promtool unit tests, so the two cannot drift apart."""

    name: str
    group: str
    expr: str
    for_: str
    severity: str
    summary: str
    description: str
    value_format: str = "humanize"

    @property
    def runbook_url(self) -> str:
        return f"{RUNBOOK_URL}#{self.name.lower()}"

    def annotations(self) -> dict[str, str]:
        fields = _PromFields(self.value_format)
        return {
            "summary": self.summary.format_map(fields),
            "description": self.description.format_map(fields),
            "runbook_url": self.runbook_url,
        }

    def expected_annotations(self, labels: Mapping[str, str], value: str = "") -> dict[str, str]:
        fields = {**labels, "value": value}
        return {
            "summary": self.summary.format_map(fields),
            "description": self.description.format_map(fields),
            "runbook_url": self.runbook_url,
        }

    def rule(self) -> dict[str, Any]:
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": self.for_,
            "labels": {SEVERITY: self.severity},
            "annotations": self.annotations(),
        }


class _PromFields(dict[str, str]):
    def __init__(self, value_format: str) -> None:
        super().__init__()
        self.value_format = value_format

    def __missing__(self, key: str) -> str:
        if key == "value":
            return f"{{{{ $value | {self.value_format} }}}}"
        return f"{{{{ $labels.{key} }}}}"


_BUDGET_WHO = f"Budget {{{q.BUDGET}}} for {{{q.SCOPE_VALUE}}}"


def _budget_alert(name: str, percent: int, severity: str, for_: str, what: str) -> Alert:
    return Alert(
        name=name,
        group="genai-meter.budgets",
        expr=f"{BUDGET_USAGE} >= {percent / 100:g}",
        for_=for_,
        severity=severity,
        summary=f"{_BUDGET_WHO} is at {{value}} of its limit.",
        description=f"{_BUDGET_WHO} has used {{value}} of its limit for the current period. {what}",
        value_format="humanizePercentage",
    )


BUDGET_75 = _budget_alert(
    "GenAIMeterBudgetAt75Percent",
    75,
    INFO,
    "5m",
    "No action needed yet; check the trend on the Budgets dashboard.",
)
BUDGET_90 = _budget_alert(
    "GenAIMeterBudgetAt90Percent",
    90,
    WARNING,
    "1m",
    "At the current rate the budget runs out soon; hard budgets will then block calls.",
)
# for: 0m on purpose: spend only rises within a period, so crossing 100 % is never a blip, and a hard
# budget is already blocking calls at that point.
BUDGET_100 = _budget_alert(
    "GenAIMeterBudgetExhausted",
    100,
    CRITICAL,
    "0m",
    "Hard budgets now block calls with BudgetExceeded; soft budgets keep spending over the limit.",
)

SPEND_SPIKE = Alert(
    name="GenAIMeterSpendSpike",
    group="genai-meter.spend",
    # In USD per hour so that $value reads naturally in the annotations.
    expr=(
        f"3600 * {TENANT_COST_RATE1H} > {SPIKE_FACTOR} * 3600 * avg_over_time({TENANT_COST_RATE1H}[1w])"
        f" and 3600 * {TENANT_COST_RATE1H} > {SPIKE_MIN_USD_PER_HOUR:g}"
    ),
    for_="15m",
    severity=WARNING,
    summary=f"LLM spend of tenant {{{q.TENANT}}} is more than {SPIKE_FACTOR}x its weekly baseline.",
    description=(
        f"Tenant {{{q.TENANT}}} spent at {{value}} USD/h over the last hour,"
        f" more than {SPIKE_FACTOR} times its"
        f" average hourly rate over the past week (and above {SPIKE_MIN_USD_PER_HOUR:g} USD/h)."
    ),
    value_format='printf "%.2f"',
)

UNPRICED_CALLS = Alert(
    name="GenAIMeterUnpricedModelCalls",
    group="genai-meter.calls",
    expr=q.new_or_increased(q.UNPRICED, "30m", _CALL_KEY),
    for_="1m",
    severity=WARNING,
    summary=f"Calls to {{{q.PROVIDER}}} model {{{q.MODEL}}} have no price.",
    description=(
        f"{{{q.PROVIDER}}} model {{{q.MODEL}}} was called in the last 30 minutes but is missing from the"
        " pricing map: its cost is unknown (never counted as $0) and budgets do not see it."
    ),
)

ERROR_RATE = Alert(
    name="GenAIMeterHighErrorRate",
    group="genai-meter.calls",
    expr=f"{ERRORS_RATIO5M} > {ERROR_RATIO:g}",
    for_="10m",
    severity=WARNING,
    summary=f"{{value}} of calls to {{{q.PROVIDER}}} model {{{q.MODEL}}} fail.",
    description=(
        f"{{value}} of the calls sent to {{{q.PROVIDER}}} model {{{q.MODEL}}} over the last 5 minutes"
        f" ended in an error (threshold {ERROR_RATIO:.0%})."
    ),
    value_format="humanizePercentage",
)

BLOCKED_CALLS = Alert(
    name="GenAIMeterCallsBlocked",
    group="genai-meter.budgets",
    expr=q.new_or_increased(q.BUDGET_BLOCKED, "10m", q.BUDGET_KEY),
    for_="1m",
    severity=WARNING,
    summary=f"Calls are being blocked by budget {{{q.BUDGET}}} for {{{q.SCOPE_VALUE}}}.",
    description=(
        f"{_BUDGET_WHO} stopped calls before they were sent in the last 10 minutes; the application"
        " received BudgetExceeded."
    ),
)

ALERTS: tuple[Alert, ...] = (
    BUDGET_75,
    BUDGET_90,
    BUDGET_100,
    BLOCKED_CALLS,
    SPEND_SPIKE,
    UNPRICED_CALLS,
    ERROR_RATE,
)
BUDGET_TIERS: tuple[Alert, ...] = (BUDGET_75, BUDGET_90, BUDGET_100)


# Where each recording rule is evaluated: in the group of the alerts that read it, before them.
# Rules of one group run in order at each evaluation; groups run in no set order, so an alert in
# another group than its recording rule could read the value of the evaluation before (flaky).
_RECORDING_GROUP = {
    BUDGET_USAGE: "genai-meter.budgets",
    TENANT_COST_RATE1H: "genai-meter.spend",
    REQUESTS_RATE5M: "genai-meter.calls",
    ERRORS_RATIO5M: "genai-meter.calls",
}


def rule_groups() -> dict[str, Any]:
    """The rule file's content, ready for YAML."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for name, expr in RECORDING_RULES:
        groups.setdefault(_RECORDING_GROUP.get(name, "genai-meter.recording"), []).append(
            {"record": name, "expr": expr}
        )
    for alert in ALERTS:
        groups.setdefault(alert.group, []).append(alert.rule())
    return {"groups": [{"name": name, "rules": rules} for name, rules in groups.items()]}
