"""Starting a call's span without the OTel SDK's generic sampling path, where its sampler is one
whose decision is known from the parent alone.

`Tracer.start_span` (OTel SDK 1.45) finds the parent span in the context three times (once itself,
once in `ParentBased.should_sample`, once in the chosen sampler's trace state lookup), builds a
`SamplingResult` and two `TraceFlags`, and asks the sampler through two layers of keyword calls:
~200 Python opcodes of the ~4,900 that metering adds to an OpenAI stream, for a decision that the
SDK's default sampler (`ParentBased(ALWAYS_ON)`, and any `ParentBased` of the SDK's static
samplers) takes from the parent's flags alone. Here that decision is made once from the parent,
and the span is made as `start_span` makes it (the same `_Span` arguments, ids from the tracer's
id generator, the tracer's metrics told of the start), then started.

Only where everything is as read: the tracer is the SDK's own and enabled; the sampler is a
`ParentBased` whose five samplers are the SDK's `StaticSampler`s; `Tracer.start_span`,
`ParentBased.should_sample`, `StaticSampler.should_sample` and `_get_parent_trace_state` have the
sources known (OTel SDK 1.45.1 and 1.45.2); the sampler's choice records and samples (a dropped span
is the SDK's to make: `start_span` is called). Anything else takes `start_span`. Tests compare the
spans both ways make.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanContext, SpanKind, TraceFlags

from ._sdk_views import mirrors

try:
    from opentelemetry.sdk.trace import Tracer as _SdkTracer
    from opentelemetry.sdk.trace import _Span as _SdkSpan
    from opentelemetry.sdk.trace import sampling as _sampling
    from opentelemetry.trace.propagation import _SPAN_KEY

    _SAMPLERS_OF_PARENT_BASED = (
        "_root",
        "_remote_parent_sampled",
        "_remote_parent_not_sampled",
        "_local_parent_sampled",
        "_local_parent_not_sampled",
    )
except ImportError:  # no OTel SDK installed: `start_span` always
    _SdkTracer = None  # type: ignore[assignment,misc]

__all__ = ["start_span"]

_CLIENT = SpanKind.CLIENT
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_SAMPLED_RANDOM = TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)
# The sha256 of the sources (`_sdk_views.source_digest`) of `Tracer.start_span`,
# `ParentBased.should_sample`, `StaticSampler.should_sample` and `_get_parent_trace_state`, in
# the OTel SDK versions whose behaviour `_start_known` mirrors (1.45.1, 1.45.2).
_KNOWN_DIGESTS = frozenset(
    {
        "259160fe857681e80536a6a7fc76860763538c7a330c2f07d1b322f4cc34feae",  # Tracer.start_span
        "e5a26916cada47e7eda4e3a10c152414716fd33b66d2a8c073e42dc04de898f4",  # ParentBased.should_sample
        "addc0a471e9f1fbac7a5b38e16b8f28a00aa7d13d2ab5284f5629a3ac8ff1e82",  # StaticSampler.should_sample
        "4a4ae4ce5aca4bbe3ca967c898a508d27af34b632428305a7ea1d8ff2dde0564",  # _get_parent_trace_state
    }
)
# (the sampler last checked, whether its decisions are known from the parent alone)
_checked: tuple[object, bool] = (None, False)


def start_span(tracer: Any, name: str, context: Context | None, start_time: int) -> Span:
    """`tracer.start_span(name, context, kind=CLIENT, start_time=start_time)`, with no attributes."""
    if type(tracer) is _SdkTracer and context is not None and _known_sampler(tracer.sampler):
        span = _start_known(tracer, name, context, start_time)
        if span is not None:
            return span
    return tracer.start_span(name, context, kind=_CLIENT, start_time=start_time)  # type: ignore[no-any-return]


def _known_sampler(sampler: object) -> bool:
    """Whether `sampler` is a `ParentBased` of the SDK's static samplers, and the SDK's code the one
    mirrored (checked once per sampler: a provider's sampler is replaced, never changed)."""
    global _checked
    checked, known = _checked
    if checked is sampler:
        return known
    known = (
        type(sampler) is _sampling.ParentBased
        and all(type(getattr(sampler, name, None)) is _sampling.StaticSampler for name in _SAMPLERS_OF_PARENT_BASED)
        and all(
            mirrors(function, _KNOWN_DIGESTS)
            for function in (
                _SdkTracer.start_span,
                _sampling.ParentBased.should_sample,
                _sampling.StaticSampler.should_sample,
                _sampling._get_parent_trace_state,
            )
        )
    )
    _checked = (sampler, known)
    return known


def _start_known(tracer: Any, name: str, context: Context, start_time: int) -> Span | None:
    """The span `start_span` makes where the sampler chosen records and samples; None otherwise."""
    if not tracer._is_enabled():
        return None
    sampler = tracer.sampler
    parent_span = context.get(_SPAN_KEY)
    parent: SpanContext | None = parent_span.get_span_context() if isinstance(parent_span, Span) else None
    if parent is None or not parent.is_valid:
        parent = None
        chosen = sampler._root
    elif parent.is_remote:
        chosen = sampler._remote_parent_sampled if parent.trace_flags.sampled else sampler._remote_parent_not_sampled
    else:
        chosen = sampler._local_parent_sampled if parent.trace_flags.sampled else sampler._local_parent_not_sampled
    decision = chosen._decision
    if decision is not _sampling.Decision.RECORD_AND_SAMPLE:
        return None
    ids = tracer.id_generator
    if parent is None:
        trace_id = ids.generate_trace_id()
        flags = _SAMPLED_RANDOM if ids.is_trace_id_random() else _SAMPLED
        trace_state = None
    else:
        trace_id = parent.trace_id
        flags = _SAMPLED_RANDOM if parent.trace_flags.random_trace_id else _SAMPLED
        trace_state = parent.trace_state
    span = _SdkSpan(
        name,
        SpanContext(trace_id, ids.generate_span_id(), False, flags, trace_state),
        parent,
        sampler,
        None,
        tracer.resource,
        None,  # (the sampling result's attributes: none, from a static sampler given none)
        None,
        (),
        _CLIENT,
        tracer.span_processor,
        tracer.instrumentation_info,
        True,
        True,
        tracer._span_limits,
        tracer._instrumentation_scope,
        record_end_metrics=tracer._tracer_metrics.start_span(parent, decision),
    )
    span.start(start_time=start_time, parent_context=context)
    return span
