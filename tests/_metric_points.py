"""Test helpers for what a metric reader exports."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from genai_meter._faults import reset_faults


def data_points(reader: InMemoryMetricReader) -> Iterator[tuple[Any, Any]]:
    """(metric, data point) of each point a collection of `reader` exports."""
    data = reader.get_metrics_data()
    for resource_metrics in data.resource_metrics if data is not None else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:
                    yield metric, point


@pytest.fixture
def fresh_faults() -> Iterator[None]:
    """genai-meter's fault counts emptied before and after the test."""
    reset_faults()
    yield
    reset_faults()
