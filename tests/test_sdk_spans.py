"""`_sdk_spans`: the same spans as the OTel SDK's `Tracer.start_span` and `Span.end` make, made
without its generic layers where the sampler's decision is known from the parent and the processors
are the SDK's batch processors, and by the SDK's own methods wherever they are not."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.context import Context, get_current
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace import sampling as sdk_sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
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

from genai_meter import _sdk_spans as sdk_spans
from genai_meter._sdk_spans import end_span, start_span
from genai_meter._span_attributes import start_client_span

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
    recording = span.is_recording() if hasattr(span, "is_recording") else None  # (an exported copy has none)
    found: dict[str, Any] = {"type": type(span).__name__, "recording": recording}
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
    sdk_spans._checked_sampler = (None, False)
    sdk_spans._checked_processors = (None, None)
    yield
    sdk_spans._checked_sampler = (None, False)
    sdk_spans._checked_processors = (None, None)


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


def _fields(span: Any) -> dict[str, Any]:
    """A span object's own fields, those made anew for each span compared by their type."""
    fresh = ("_context", "_lock", "_attributes", "_events", "_links", "_record_end_metrics", "_dq")
    return {key: type(value) if key in fresh else value for key, value in vars(span).items()}


def test_the_span_object_has_the_sdks_fields() -> None:
    tracing = _Tracing()
    ours, sdk = tracing.both_ways(_parent(remote=False, flags=TraceFlags.SAMPLED))
    assert tracing.sdk_starts == 1
    assert _fields(ours) == _fields(sdk)
    assert list(vars(ours)) == list(vars(sdk))  # (set in the same order: the class's shared layout)
    assert (ours._limits, ours._span_processor, ours._sampler) == (sdk._limits, sdk._span_processor, sdk._sampler)
    assert ours._attributes.maxlen == sdk._attributes.maxlen
    assert ours._events._dq.maxlen == sdk._events._dq.maxlen and ours._links._dq.maxlen == sdk._links._dq.maxlen
    for name in ("_attributes", "_events", "_links"):  # made as their classes' `__init__`s make them
        mine, theirs = getattr(ours, name), getattr(sdk, name)
        assert type(mine) is type(theirs) and list(vars(mine)) == list(vars(theirs))  # (same fields, same order)
        assert _fields(mine) == _fields(theirs)


def test_spans_do_not_share_their_event_lists() -> None:
    tracing = _Tracing()
    context = _parent(remote=False, flags=TraceFlags.SAMPLED)
    first: Any = start_span(tracing.tracer, "chat gpt-4o-mini", context, START)
    first.add_event("first")
    second: Any = start_span(tracing.tracer, "chat gpt-4o-mini", context, START)
    assert tracing.sdk_starts == 0
    assert [event.name for event in first.events] == ["first"] and list(second.events) == []
    assert first._events._dq is not second._events._dq and first._attributes._dict is not second._attributes._dict


class _Batched:
    """A tracer provider exporting through the SDK's batch processor (as under the launcher)."""

    def __init__(self, processors: int = 1) -> None:
        self.exporters = [InMemorySpanExporter() for _ in range(processors)]
        self.provider = TracerProvider()
        for exporter in self.exporters:
            self.provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=3_600_000))
        self.tracer: Any = self.provider.get_tracer("test", "1.0")

    def exported(self) -> list[list[Any]]:
        self.provider.force_flush()
        return [list(exporter.get_finished_spans()) for exporter in self.exporters]


@pytest.mark.parametrize("processors", [1, 2])
def test_an_ended_span_is_exported_as_the_sdks_end_exports_it(processors: int) -> None:
    batched = _Batched(processors)
    ours = start_span(batched.tracer, "chat gpt-4o-mini", get_current(), START)
    sdk = start_span(batched.tracer, "chat gpt-4o-mini", get_current(), START)
    for span in (ours, sdk):
        span.set_attribute("gen_ai.usage.input_tokens", 1200)
    end_span(ours, START + 1000)
    sdk.end(START + 1000)
    assert sdk_spans._checked_processors[1] is not None  # the mirrored end was taken
    for exported in batched.exported():
        assert len(exported) == 2
        mine, theirs = exported
        assert type(mine) is type(theirs) and _compared(mine) == _compared(theirs)
        assert list(vars(mine)) == list(vars(theirs))
        assert dict(mine.attributes or {}) == {"gen_ai.usage.input_tokens": 1200}
    assert not ours.is_recording() and ours.end_time == START + 1000  # type: ignore[attr-defined]


def test_a_span_ended_twice_is_exported_once_with_the_sdks_warning(caplog: pytest.LogCaptureFixture) -> None:
    batched = _Batched()
    span = start_span(batched.tracer, "chat gpt-4o-mini", get_current(), START)
    end_span(span, START + 1000)
    end_span(span, START + 2000)
    assert "Calling end() on an ended span." in caplog.text
    [[exported]] = batched.exported()
    assert exported.end_time == START + 1000


def test_other_processors_are_ended_by_the_sdks_end() -> None:
    tracing = _Tracing()  # a simple processor: the SDK's end, which exports at once
    span = start_span(tracing.tracer, "chat gpt-4o-mini", get_current(), START)
    end_span(span, START + 1000)
    assert sdk_spans._checked_processors[1] is None
    assert [exported.end_time for exported in tracing.exporter.get_finished_spans()] == [START + 1000]
