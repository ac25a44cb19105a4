"""Spans through the real OTel SDK into `CostSpanExporter`, which hands them to an in-memory exporter."""

from __future__ import annotations

import contextlib
import sys
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


_SDK_PACKAGES = ("openai.", "anthropic.", "google.genai.")


def _sdk_classes() -> list[type]:
    classes: list[type] = []
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(_SDK_PACKAGES):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, type) and value.__module__ == name:
                classes.append(value)
    return classes


@pytest.fixture(autouse=True)
def sdk_methods_restored() -> Iterator[None]:
    """The peers here (OpenLLMetry, the official OTel instrumentation) leave wrappers behind on the
    SDKs' classes when they uninstrument (OpenLLMetry's misses some methods; OTel's `unwrap` strips
    whatever layer is outermost). Every SDK class is put back as it was, for the tests that follow."""
    before = {cls: dict(vars(cls)) for cls in _sdk_classes()}
    yield
    for cls, attributes in before.items():
        now = vars(cls)
        for key in [key for key in now if key not in attributes]:
            with contextlib.suppress(AttributeError, TypeError):
                delattr(cls, key)
        for key, value in attributes.items():
            if now.get(key) is not value:
                with contextlib.suppress(AttributeError, TypeError):
                    setattr(cls, key, value)
