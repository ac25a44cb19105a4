"""`add_span_attributes`: the same exported attributes as the SDK's `set_attributes`, without the
SDK's per-value cleaning where the values are plain, and the SDK's own rules wherever they matter."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import attributes as otel_attributes
from opentelemetry.sdk.trace import SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import INVALID_SPAN, SpanKind

from genai_meter._span_attributes import add_span_attributes, start_client_span

OUTCOME = {
    "genai_meter.outcome": "ok",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.response.finish_reasons": ("stop", "length"),
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.output_tokens": 300,
    "genai_meter.usage.estimated": True,
    "genai_meter.cost.usd": 0.000342,
}


class _Tracing:
    def __init__(self, limits: SpanLimits | None = None) -> None:
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider(span_limits=limits) if limits is not None else TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.provider = provider
        self.tracer = provider.get_tracer("test")

    def both_ways(self, attributes: dict[str, Any], start: dict[str, Any] | None = None) -> tuple[Any, Any]:
        """(attributes exported through add_span_attributes, through the SDK's set_attributes)."""
        ours = self.tracer.start_span("ours", attributes=start)
        add_span_attributes(ours, attributes)
        ours.end()
        sdk = self.tracer.start_span("sdk", attributes=start)
        sdk.set_attributes(attributes)
        sdk.end()
        exported = {span.name: span for span in self.exporter.get_finished_spans()}
        return exported["ours"], exported["sdk"]


@pytest.fixture
def cleanings(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Every value the SDK's attribute cleaning is asked about."""
    seen: list[object] = []
    clean = otel_attributes._clean_attribute_value

    def counting(value: Any, limit: int | None) -> Any:
        seen.append(value)
        return clean(value, limit)

    monkeypatch.setattr(otel_attributes, "_clean_attribute_value", counting)
    yield seen


def test_plain_values_skip_the_sdk_cleaning_and_export_the_same(cleanings: list[object]) -> None:
    tracing = _Tracing()
    span = tracing.tracer.start_span("call", attributes={"gen_ai.operation.name": "chat"})
    cleanings.clear()
    add_span_attributes(span, OUTCOME)
    assert cleanings == []  # not one value cleaned again
    span.end()
    ours, sdk = tracing.both_ways(OUTCOME, start={"gen_ai.operation.name": "chat"})
    assert dict(ours.attributes) == dict(sdk.attributes) == {"gen_ai.operation.name": "chat", **OUTCOME}
    assert ours.dropped_attributes == sdk.dropped_attributes == 0


def test_values_the_sdk_would_change_take_the_sdk_path(cleanings: list[object]) -> None:
    class Tokens(int):
        pass

    odd = {"a.list": ["stop", "length"], "a.number_subclass": Tokens(7), "a.mixed_tuple": ("stop", 3)}
    ours, sdk = _Tracing().both_ways(odd)
    assert dict(ours.attributes) == dict(sdk.attributes)
    assert ours.attributes["a.list"] == ("stop", "length")  # the SDK's tuple, not the list
    assert cleanings  # the SDK cleaned them


def test_a_value_length_limit_is_applied_as_the_sdk_applies_it() -> None:
    ours, sdk = _Tracing(SpanLimits(max_attribute_length=5)).both_ways(OUTCOME)
    assert ours.attributes["gen_ai.response.model"] == sdk.attributes["gen_ai.response.model"] == "gpt-4"
    assert dict(ours.attributes) == dict(sdk.attributes)


def test_a_count_limit_drops_as_the_sdk_drops() -> None:
    ours, sdk = _Tracing(SpanLimits(max_span_attributes=4)).both_ways(OUTCOME, start={"gen_ai.operation.name": "chat"})
    assert len(ours.attributes) == 4
    assert dict(ours.attributes) == dict(sdk.attributes)
    assert ours.dropped_attributes == sdk.dropped_attributes == 4


def test_an_ended_span_is_left_as_it_was(caplog: pytest.LogCaptureFixture) -> None:
    tracing = _Tracing()
    span = tracing.tracer.start_span("call")
    span.end()
    with caplog.at_level(logging.WARNING):
        add_span_attributes(span, OUTCOME)
    [exported] = tracing.exporter.get_finished_spans()
    assert dict(exported.attributes or {}) == {}
    assert "ended span" in caplog.text  # the SDK's own warning


def test_a_span_of_no_sdk_takes_the_public_api() -> None:
    add_span_attributes(INVALID_SPAN, OUTCOME)  # a no-op span: nothing to do, nothing raised


START = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini", "user.id": "u-1"}


def test_a_span_starts_with_its_attributes_uncleaned_under_the_default_set_up(cleanings: list[object]) -> None:
    tracing = _Tracing()
    cleanings.clear()
    span, _store = start_client_span(tracing.tracer, "chat gpt-4o-mini", dict(START), 1_000)
    assert cleanings == []
    span.end()
    [exported] = tracing.exporter.get_finished_spans()
    assert dict(exported.attributes or {}) == START
    assert exported.kind is SpanKind.CLIENT and exported.start_time == 1_000


@pytest.mark.parametrize(
    "sampler", [ALWAYS_ON, ParentBased(ALWAYS_ON), TraceIdRatioBased(1.0), ParentBased(TraceIdRatioBased(0.999))]
)
def test_the_sdk_samplers_are_known_not_to_read_attributes(sampler: Sampler, cleanings: list[object]) -> None:
    tracer = TracerProvider(sampler=sampler).get_tracer("test")
    cleanings.clear()
    start_client_span(tracer, "chat", dict(START), 1_000)[0].end()
    assert cleanings == []


class _TenantSampler(Sampler):
    """Drops the spans of one user: it needs the attributes at the start."""

    def should_sample(self, parent_context: Any, trace_id: int, name: str, kind: Any = None,
                      attributes: Any = None, links: Any = None, trace_state: Any = None) -> SamplingResult:
        dropped = (attributes or {}).get("user.id") == "u-1"
        return SamplingResult(Decision.DROP if dropped else Decision.RECORD_AND_SAMPLE, attributes)

    def get_description(self) -> str:
        return "TenantSampler"


def test_a_custom_sampler_is_given_the_attributes_at_the_start() -> None:
    provider = TracerProvider(sampler=_TenantSampler())
    span, _store = start_client_span(provider.get_tracer("test"), "chat", dict(START), 1_000)
    assert not span.is_recording()


class _ReadsAtStart(SpanProcessor):
    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        self.seen.append(dict(span.attributes))


def test_a_processor_that_reads_at_the_start_is_given_the_attributes() -> None:
    tracing = _Tracing()
    reader = _ReadsAtStart()
    provider_of = tracing.tracer  # the processor joins the provider after the tracer was made
    span, _store = start_client_span(provider_of, "chat", dict(START), 1_000)  # quiet processors: fast path
    span.end()
    tracing.provider.add_span_processor(reader)
    start_client_span(provider_of, "chat", dict(START), 1_000)[0].end()
    assert reader.seen == [START]


@pytest.mark.parametrize("limit", [None, 6, 10], ids=["no-limit", "over-the-limit", "within-the-limit"])
def test_the_store_found_at_the_start_takes_the_end_attributes_as_the_sdk_would(limit: int | None) -> None:
    """The attribute store `start_client_span` hands back is used at the span's end with its
    count checked again: past the count limit the SDK adds (and drops) them, as it would have."""
    tracing = _Tracing(SpanLimits(max_span_attributes=limit) if limit is not None else None)
    span, store = start_client_span(tracing.tracer, "ours", dict(START), 1_000)
    assert store is not None
    add_span_attributes(span, OUTCOME, True, store)
    span.end()
    sdk = tracing.tracer.start_span("sdk", attributes=dict(START))
    sdk.set_attributes(OUTCOME)
    sdk.end()
    exported = {span.name: span for span in tracing.exporter.get_finished_spans()}
    assert dict(exported["ours"].attributes or {}) == dict(exported["sdk"].attributes or {})
    assert exported["ours"].dropped_attributes == exported["sdk"].dropped_attributes
    assert exported["ours"].dropped_attributes == (0 if limit in (None, 10) else 4)
