"""`_span_start.start_span`: the same spans as the OTel SDK's `Tracer.start_span`, made without its
generic sampling path where the sampler's decision is known from the parent, and by `start_span`
wherever it is not."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.context import Context, get_current
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace import sampling as sdk_sampling
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    DEFAULT_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, TraceState

from genai_meter import _span_start as span_start
from genai_meter._span_attributes import start_client_span
from genai_meter._span_start import start_span

START = 1_700_000_000_000_000_000
STATE = TraceState([("vendor", "value")])
SAMPLED_RANDOM = TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)


def _parent(remote: bool, flags: int, state: TraceState | None = None) -> Context:
    span_context = SpanContext(0x1234, 0x5678, is_remote=remote, trace_flags=TraceFlags(flags), trace_state=state)
    return trace.set_span_in_context(NonRecordingSpan(span_context), Context())


class _Tracing:
    def __init__(self, sampler: Sampler = DEFAULT_ON) -> None:
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider(sampler=sampler)
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer: Any = provider.get_tracer("test", "1.0")
        self.sdk_starts = 0
        sdk_start = self.tracer.start_span

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.sdk_starts += 1
            return sdk_start(*args, **kwargs)

        self.tracer.__dict__["start_span"] = counted  # (the instance's: the class's code is what is checked)

    def both_ways(self, context: Context) -> tuple[Any, Any]:
        """(the span `start_span` made, the span the SDK's `start_span` made), each ended."""
        ours = start_span(self.tracer, "chat gpt-4o-mini", context, START)
        sdk = self.tracer.start_span("chat gpt-4o-mini", context, kind=SpanKind.CLIENT, start_time=START)
        for span in (ours, sdk):
            span.end(START + 1000)
        return ours, sdk


def _compared(span: Any) -> dict[str, Any]:
    """What a span holds, ids aside (the span's own id is random; its trace id is compared apart)."""
    found: dict[str, Any] = {"type": type(span).__name__, "recording": span.is_recording()}
    context = span.get_span_context()
    found.update(flags=context.trace_flags, state=context.trace_state, remote=context.is_remote)
    if isinstance(span, ReadableSpan):
        found.update(
            name=span.name,
            kind=span.kind,
            parent=span.parent,
            start=span.start_time,
            end=span.end_time,
            attributes=dict(span.attributes or {}),
            resource=span.resource,
            scope=span.instrumentation_scope,
            links=tuple(span.links),
            events=tuple(span.events),
            status=span.status.status_code,
        )
    return found


@pytest.fixture(autouse=True)
def _fresh_check() -> Iterator[None]:
    span_start._checked = (None, False)
    yield
    span_start._checked = (None, False)


@pytest.mark.parametrize(
    ("context", "flags"),
    [
        (Context(), SAMPLED_RANDOM),
        (_parent(remote=False, flags=TraceFlags.SAMPLED), TraceFlags(TraceFlags.SAMPLED)),
        (_parent(remote=True, flags=TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID, state=STATE), SAMPLED_RANDOM),
    ],
    ids=["root", "local sampled parent", "remote sampled parent with trace state"],
)
def test_sampled_spans_are_the_sdks_without_its_start_span(context: Context, flags: TraceFlags) -> None:
    tracing = _Tracing()
    ours, sdk = tracing.both_ways(context)
    assert tracing.sdk_starts == 1  # the SDK's side only
    assert _compared(ours) == _compared(sdk)
    assert ours.get_span_context().trace_flags == flags
    parent = trace.get_current_span(context).get_span_context()
    if parent.is_valid:
        assert ours.get_span_context().trace_id == parent.trace_id == sdk.get_span_context().trace_id
        assert ours.parent == parent and ours.get_span_context().trace_state == parent.trace_state
    else:
        assert ours.parent is None and ours.get_span_context().trace_id != sdk.get_span_context().trace_id
    assert ours.get_span_context().span_id != sdk.get_span_context().span_id
    assert [span.name for span in tracing.exporter.get_finished_spans()] == ["chat gpt-4o-mini"] * 2


@pytest.mark.parametrize(
    ("sampler", "context"),
    [
        (DEFAULT_ON, _parent(remote=False, flags=TraceFlags.DEFAULT)),
        (DEFAULT_ON, _parent(remote=True, flags=TraceFlags.DEFAULT)),
        (ParentBased(ALWAYS_OFF), Context()),
        (ParentBased(TraceIdRatioBased(1.0)), Context()),
        (ALWAYS_ON, Context()),
        (ParentBased(ALWAYS_ON, local_parent_sampled=TraceIdRatioBased(1.0)), Context()),
    ],
    ids=[
        "unsampled local parent",
        "unsampled remote parent",
        "root dropped",
        "ratio root",
        "not parent-based",
        "parent-based of a non-static sampler",
    ],
)
def test_other_decisions_and_samplers_are_the_sdks_start_span(sampler: Sampler, context: Context) -> None:
    tracing = _Tracing(sampler)
    ours, sdk = tracing.both_ways(context)
    assert tracing.sdk_starts == 2
    assert _compared(ours) == _compared(sdk)


def test_a_disabled_tracer_is_the_sdks() -> None:
    tracing = _Tracing()
    tracing.tracer._is_enabled = lambda: False
    ours, sdk = tracing.both_ways(_parent(remote=False, flags=TraceFlags.SAMPLED))
    assert tracing.sdk_starts == 2
    assert not ours.is_recording() and _compared(ours) == _compared(sdk)


def test_sdk_code_that_differs_is_not_mirrored(monkeypatch: pytest.MonkeyPatch) -> None:
    should_sample = sdk_sampling.ParentBased.should_sample

    def other(self: Any, *args: Any, **kwargs: Any) -> Any:
        return should_sample(self, *args, **kwargs)

    monkeypatch.setattr(sdk_sampling.ParentBased, "should_sample", other)
    tracing = _Tracing()
    ours, sdk = tracing.both_ways(Context())
    assert tracing.sdk_starts == 2
    assert _compared(ours) == _compared(sdk)


def test_a_calls_span_starts_this_way_under_the_default_set_up() -> None:
    tracing = _Tracing()
    span, store = start_client_span(
        tracing.tracer, "chat gpt-4o-mini", {"gen_ai.operation.name": "chat"}, START, get_current()
    )
    span.end()
    assert tracing.sdk_starts == 0 and store is not None
    [exported] = tracing.exporter.get_finished_spans()
    assert exported.kind is SpanKind.CLIENT and dict(exported.attributes or {}) == {"gen_ai.operation.name": "chat"}
