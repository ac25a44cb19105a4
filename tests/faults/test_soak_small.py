"""The soak benchmark (benchmarks/bench_soak.py) at a reduced size: every span ends, metric series stay
bounded by `label_cap` whatever the number of users, and memory does not grow with the calls."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from genai_meter import names
from genai_meter._config import Config

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_soak.py"
CALLS, USERS, CAP = 20_000, 5_000, 100


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_soak", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# 20,000 real calls: ~45 s alone on this machine kind, past the suite's 120 s when other heavy work
# shares its two cores; a hang is still caught.
@pytest.mark.timeout(360)
def test_soak_small() -> None:
    result = _bench().run_soak(CALLS, USERS, CAP, collect_every=5_000)

    assert result["mix"] == {
        "call": CALLS * 16 // 20,
        "stream": CALLS * 2 // 20,
        "stream_break_dropped": CALLS // 20,
        "stream_break_closed": CALLS // 20,
    }
    # Every call started one span and ended it, broken-off and dropped streams included.
    assert result["spans_started"] == CALLS
    assert result["spans_open_before_shutdown"] == 0
    assert result["spans_open"] == 0
    assert result["spans_ended"] == CALLS
    # (The BatchSpanProcessor may drop spans when its queue is full on a busy machine: not ours.)
    assert result["spans_exported"] + result["spans_dropped_by_processor"] == CALLS

    # 5,000 users, cap 100: 100 user values plus the overflow value, in every collection.
    assert result["distinct_user_labels"] == CAP
    for series in [*result["series_per_collection"], result["series"]]:
        for metric in (names.COST, names.TOKENS, names.REQUESTS):
            assert series[metric.otel_name]["user_values"] == CAP + 1
            assert series[metric.otel_name]["sdk_overflow_points"] == 0
    # 20 tenants and 4 features per user value: 100 capped users have one each, the overflow 20.
    series_counts = result["in_process_series"]
    assert series_counts[names.COST.prometheus_name] == CAP + 20
    assert series_counts[names.REQUESTS.prometheus_name] == CAP + 20
    # input and output for every one; cache read only where a call reported usage (a stream broken off
    # before its usage is estimated, with no cache read): zero amounts make no series.
    assert 2 * (CAP + 20) < series_counts[names.TOKENS.prometheus_name] <= 3 * (CAP + 20)

    # Memory: a generous bound (the full-size figures are in docs/reliability.md).
    # Flat after warm-up: a span kept per call (e.g. by exemplars) grew this by ~40 MiB.
    assert result["rss_growth_after_warmup_kib"] < 16 * 1024
    assert result["rss_max_kib"] - result["rss_start_kib"] < 50 * 1024


def test_default_label_cap_fits_the_sdk_cardinality_limit() -> None:
    """Past the OTel SDK's 2,000 series per instrument, the SDK would drop every label of the extra
    points; genai-meter folds tenant and user first (max_series_per_metric), so no point loses its
    provider, model, operation and feature, and per-user cost and requests keep every capped user."""
    cap = Config().label_cap
    result = _bench().run_soak(cap + 100, cap + 100, cap, collect_every=cap + 100)
    for metric in (names.COST, names.TOKENS, names.REQUESTS):
        series = result["series"][metric.otel_name]
        assert series["sdk_overflow_points"] == 0, metric.otel_name
    for metric in (names.COST, names.REQUESTS):
        assert result["series"][metric.otel_name]["user_values"] == cap + 1, metric.otel_name
