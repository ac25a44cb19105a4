"""Budget gauges and counters through the real OTel SDK, with the label cap."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from genai_meter import names
from genai_meter.budgets import BudgetExceeded, BudgetGuard, PendingCall, parse_budget_config

from .conftest import Clock


def _points(reader: InMemoryMetricReader) -> dict[str, dict[tuple[tuple[str, Any], ...], float]]:
    found: dict[str, dict[tuple[tuple[str, Any], ...], float]] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    key = tuple(sorted(point.attributes.items()))
                    found.setdefault(metric.name, {})[key] = point.value
    return found


def _labels(budget: str, scope: str, **more: str) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted({names.LABEL_BUDGET: budget, names.LABEL_SCOPE_VALUE: scope, **more}.items()))


def test_gauges_counters_and_label_cap(clock: Clock) -> None:
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    section = {
        "policies": [
            {"name": "per-user", "scope": "user", "limit_usd": 0.02, "mode": "hard", "period": "day"}
        ],
        "blocked": [{"user": "mallory", "reason": "abuse"}],
    }
    guard = BudgetGuard(parse_budget_config(section), clock=clock, meter=meter, label_cap=2)
    for user in ("u1", "u2", "u3", "u4"):
        for _ in range(2):
            reservation = guard.check_and_reserve(
                PendingCall("openai", "m", "chat", user=user, estimate_usd=0.01)
            )
            assert reservation is not None
            guard.settle(reservation, 0.01)
    with pytest.raises(BudgetExceeded):
        guard.check_and_reserve(PendingCall("openai", "m", "chat", user="u1", estimate_usd=0.01))
    with pytest.raises(BudgetExceeded):
        guard.check_and_reserve(PendingCall("openai", "m", "chat", user="mallory"))

    points = _points(reader)
    assert points[names.BUDGET_LIMIT.otel_name] == {
        _labels("per-user", "u1"): pytest.approx(0.02, abs=1e-9),
        _labels("per-user", "u2"): pytest.approx(0.02, abs=1e-9),
        _labels("per-user", names.OVERFLOW_LABEL_VALUE): pytest.approx(0.04, abs=1e-9),  # u3 + u4
    }
    assert points[names.BUDGET_SPEND.otel_name] == {
        _labels("per-user", "u1"): pytest.approx(0.02, abs=1e-9),
        _labels("per-user", "u2"): pytest.approx(0.02, abs=1e-9),
        _labels("per-user", names.OVERFLOW_LABEL_VALUE): pytest.approx(0.04, abs=1e-9),
    }
    crossings = points[names.BUDGET_THRESHOLD_CROSSINGS.otel_name]
    assert crossings[_labels("per-user", "u1", **{names.LABEL_THRESHOLD: "75"})] == 1
    assert crossings[_labels("per-user", names.OVERFLOW_LABEL_VALUE, **{names.LABEL_THRESHOLD: "100"})] == 2
    assert len(crossings) == 9
    assert points[names.BUDGET_BLOCKED.otel_name] == {
        _labels("per-user", "u1"): 1,
        _labels("block_list", "user:mallory"): 1,
    }

    clock.advance(days=1)  # a new period: spend reads 0 until the next call, the limit stays
    spend = _points(reader)[names.BUDGET_SPEND.otel_name]
    assert set(spend.values()) == {0.0}
