"""Google Gen AI instrumented into in-memory span and metric pipelines, and a real `google-genai`
client aimed at the project's fake provider (overrides the OpenAI-only `telemetry` fixture)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google import genai
from google.genai import types
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from genai_meter._faults import reset_faults
from genai_meter._runtime import configure, reset_runtime
from genai_meter.fake_provider import FakeProvider

from ..conftest import Telemetry


@pytest.fixture
def telemetry(fake_provider: FakeProvider) -> Iterator[Telemetry]:
    from genai_meter.instrumentation.google_genai import GoogleGenAIInstrumentor

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    reset_faults()
    instrumentor = GoogleGenAIInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    configure(ledger_url="off")
    try:
        yield Telemetry(exporter, reader, tracer_provider, meter_provider)
    finally:
        instrumentor.uninstrument()
        reset_runtime()
        reset_faults()


@pytest.fixture
def gemini(fake_provider: FakeProvider) -> genai.Client:
    return genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=fake_provider.gemini_base_url))
