"""Spans through the real OTel SDK into `CostSpanExporter`, which hands them to an in-memory exporter."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from genai_meter._faults import reset_faults
from genai_meter._runtime import reset_runtime, set_providers
from genai_meter.exporter import CostSpanExporter
from genai_meter.exporter._metered import forget_all

from ..conftest import Telemetry


@dataclass
class Exported(Telemetry):
    cost_exporter: CostSpanExporter

    def by_scope(self, prefix: str) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.instrumentation_scope and s.instrumentation_scope.name.startswith(prefix)]


@pytest.fixture
def exported() -> Iterator[Exported]:
    memory = InMemorySpanExporter()
    cost_exporter = CostSpanExporter(memory)
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(cost_exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    reset_faults()
    forget_all()
    set_providers(tracer_provider, meter_provider)
    try:
        yield Exported(memory, reader, tracer_provider, meter_provider, cost_exporter)
    finally:
        reset_runtime()
        set_providers(None, None)
        reset_faults()


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})
