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


def _by_budget(points: dict[tuple[tuple[str, Any], ...], float]) -> dict[str, set[str]]:
    """Budget -> the scope_value labels of an instrument's points."""
    found: dict[str, set[str]] = {}
    for key in points:
        attributes = dict(key)
        found.setdefault(attributes[names.LABEL_BUDGET], set()).add(attributes[names.LABEL_SCOPE_VALUE])
    return found


def test_series_per_instrument_are_capped_by_max_series_across_budgets(clock: Clock) -> None:
    """Scope values fold into their budget's `__overflow__` once an instrument would pass `max_series`,
    whatever `label_cap` allows per budget; the same scope values keep a label in every instrument."""
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    section = {
        "policies": [  # per scope value: daily 2 gauges' series, 1 blocked, 3 crossings; monthly 2, 0, 1
            {"name": "daily", "scope": "user", "period": "day", "limit_usd": 0.01, "mode": "hard"},
            {"name": "monthly", "scope": "user", "period": "month", "limit_usd": 0.02, "thresholds": [50]},
        ],
        "blocked": [{"user": "mallory", "reason": "abuse"}],
    }
    # One overflow series per budget and instrument is set aside (crossings 3 + 1, blocked 2, gauges
    # 2); of the 12 series of the crossings counter, u0 and u1 take 8: u2 on finds no room.
    guard = BudgetGuard(parse_budget_config(section), clock=clock, meter=meter, label_cap=1000, max_series=12)
    users = [f"u{i}" for i in range(6)]
    for user in users:
        reservation = guard.check_and_reserve(PendingCall("openai", "m", "chat", user=user, estimate_usd=0.01))
        assert reservation is not None
        guard.settle(reservation, 0.01)  # daily at 100 %, monthly at 50 %
        with pytest.raises(BudgetExceeded):
            guard.check_and_reserve(PendingCall("openai", "m", "chat", user=user, estimate_usd=0.01))
    with pytest.raises(BudgetExceeded):
        guard.check_and_reserve(PendingCall("openai", "m", "chat", user="mallory"))

    over = names.OVERFLOW_LABEL_VALUE
    points = _points(reader)
    crossings = points[names.BUDGET_THRESHOLD_CROSSINGS.otel_name]
    assert crossings == {
        **{
            _labels("daily", scope, **{names.LABEL_THRESHOLD: percent}): (1 if scope != over else 4)
            for scope in ("u0", "u1", over)
            for percent in ("75", "90", "100")
        },
        **{
            _labels("monthly", scope, **{names.LABEL_THRESHOLD: "50"}): (1 if scope != over else 4)
            for scope in ("u0", "u1", over)
        },
    }
    assert len(crossings) == 12
    assert points[names.BUDGET_BLOCKED.otel_name] == {
        _labels("daily", "u0"): 1,
        _labels("daily", "u1"): 1,
        _labels("daily", over): 4,
        _labels("block_list", "user:mallory"): 1,
    }
    assert points[names.BUDGET_LIMIT.otel_name] == {
        _labels("daily", "u0"): pytest.approx(0.01, abs=1e-9),
        _labels("daily", "u1"): pytest.approx(0.01, abs=1e-9),
        _labels("daily", over): pytest.approx(0.04, abs=1e-9),  # u2..u5
        _labels("monthly", "u0"): pytest.approx(0.02, abs=1e-9),
        _labels("monthly", "u1"): pytest.approx(0.02, abs=1e-9),
        _labels("monthly", over): pytest.approx(0.08, abs=1e-9),
    }
    assert points[names.BUDGET_SPEND.otel_name] == {
        **{
            _labels(budget, user): pytest.approx(0.01, abs=1e-9)
            for budget in ("daily", "monthly")
            for user in ("u0", "u1")
        },
        _labels("daily", over): pytest.approx(0.04, abs=1e-9),
        _labels("monthly", over): pytest.approx(0.04, abs=1e-9),
    }
    # A dashboard joins a budget's instruments on scope_value: each keeps the same ones.
    expected = {"daily": {"u0", "u1", over}, "monthly": {"u0", "u1", over}}
    assert _by_budget(points[names.BUDGET_LIMIT.otel_name]) == expected
    assert _by_budget(points[names.BUDGET_SPEND.otel_name]) == expected
    assert _by_budget(crossings) == expected
    assert _by_budget(points[names.BUDGET_BLOCKED.otel_name]) == {
        "daily": {"u0", "u1", over},
        "block_list": {"user:mallory"},
    }

    # A guard built again on the same meter (configure() at run time): the SDK keeps the series
    # recorded so far, so the labels given and the room they took go on, first come, first kept.
    again = BudgetGuard(parse_budget_config(section), clock=clock, meter=meter, label_cap=1000, max_series=12)
    assert again._label("daily", "u1") == "u1"
    assert again._label("daily", "u9") == over
    assert again._label("block_list", "user:eve") == "user:eve"  # the blocked counter has room (3 of 12)


def test_one_budget_with_three_thresholds_stays_under_the_sdk_limit(clock: Clock) -> None:
    """700 users who each cross a budget's three thresholds: 2,100 series of the crossings counter
    under `label_cap` alone, past the OTel SDK's 2,000, which would fold the rest into one point with
    neither budget nor scope_value. With the default `max_series` (1900), 632 users keep a label."""
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    section = {"policies": [{"name": "per-user", "scope": "user", "period": "day", "limit_usd": 0.01}]}
    guard = BudgetGuard(parse_budget_config(section), clock=clock, meter=meter)
    for i in range(700):
        reservation = guard.check_and_reserve(PendingCall("openai", "m", "chat", user=f"u{i:03d}", estimate_usd=0.01))
        assert reservation is not None
        guard.settle(reservation, 0.01)

    points = _points(reader)
    crossings = points[names.BUDGET_THRESHOLD_CROSSINGS.otel_name]
    assert all(dict(key).get(names.LABEL_BUDGET) == "per-user" for key in crossings)  # no SDK overflow point
    assert len(crossings) == 633 * 3  # 632 users and the overflow, 3 thresholds each: 1899 <= 1900
    over = names.OVERFLOW_LABEL_VALUE
    for percent in ("75", "90", "100"):
        assert crossings[_labels("per-user", "u631", **{names.LABEL_THRESHOLD: percent})] == 1
        assert crossings[_labels("per-user", over, **{names.LABEL_THRESHOLD: percent})] == 700 - 632
    spend = points[names.BUDGET_SPEND.otel_name]
    assert len(spend) == 633
    assert spend[_labels("per-user", over)] == pytest.approx(0.01 * (700 - 632), abs=1e-9)
    assert _labels("per-user", "u632") not in spend  # the first 632 are kept, u632 on share the overflow
