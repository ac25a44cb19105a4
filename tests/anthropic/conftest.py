"""Anthropic instrumented into in-memory span and metric pipelines, and real SDK clients aimed at the
project's fake provider (the folder overrides the OpenAI-only `telemetry` fixture of tests/)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import pytest
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
    from genai_meter.instrumentation.anthropic import AnthropicInstrumentor

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    reset_faults()
    instrumentor = AnthropicInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    configure(ledger_url="off")
    try:
        yield Telemetry(exporter, reader, tracer_provider, meter_provider)
    finally:
        instrumentor.uninstrument()
        reset_runtime()
        reset_faults()


def claude_client(fake_provider: FakeProvider, **options: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=fake_provider.anthropic_base_url, api_key="sk-ant-test", max_retries=0, **options
    )


@pytest.fixture
def claude(fake_provider: FakeProvider) -> Iterator[anthropic.Anthropic]:
    with claude_client(fake_provider) as client:
        yield client


@pytest.fixture
async def aclaude(fake_provider: FakeProvider) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=fake_provider.anthropic_base_url, api_key="sk-ant-test", max_retries=0)
    async with client:
        yield client
