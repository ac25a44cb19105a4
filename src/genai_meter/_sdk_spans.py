"""Starting and ending a call's OTel SDK span as the SDK does, without its generic layers, where
the set-up is one whose behaviour is known.

Starting. `Tracer.start_span` (OTel SDK 1.45) finds the parent span in the context three times
(once itself, once in `ParentBased.should_sample`, once in the chosen sampler's trace state
lookup), builds a `SamplingResult` and two `TraceFlags`, asks the sampler through two layers of
keyword calls, then builds the `_Span` through three `__init__`s with keyword arguments and starts
it: ~270 Python opcodes for the span object and ~200 for the decision, of the ~4,900 that metering
added to an OpenAI stream. The SDK's default sampler (`ParentBased(ALWAYS_ON)`, and any
`ParentBased` of the SDK's static samplers) takes its decision from the parent's flags alone; here
it is made once from the parent, and the span is the object `start_span` makes (the same fields,
ids from the tracer's id generator, the tracer's metrics told of the start), its fields set in one
step (its attribute store and its event and link lists made as their `__init__`s make them, each
list's length-limited deque a copy of an empty one: ~1 µs less than the three class calls), then
handed to the span processor's `on_start` as `start` does.

Ending. `Span.end` then hands the processors a `ReadableSpan` copy through two multi-processor
loops and keyword arguments; with the SDK's batch processors only (whose `_on_ending` does
nothing and whose `on_end` queues a sampled span), `end_span` sets the end time under the span's
lock as `end` does, makes the same copy and queues it in each batch processor.

Only where everything is as read: the tracer is the SDK's own and enabled; the sampler is a
`ParentBased` whose five samplers are the SDK's `StaticSampler`s and its choice records and
samples (a dropped span is the SDK's to make); every SDK function this mirrors has a source known
(OTel SDK 1.45.1 and 1.45.2, `_KNOWN_DIGESTS`; checked with each new sampler and processors set-up,
which the SDK replaces, never changes, and read again where one was replaced meanwhile); for the
end, the span's processor is the SDK's multi-processor holding only `BatchSpanProcessor`s. Anything
else takes `start_span` / `end`. Tests compare the spans both ways make and export.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanContext, SpanKind, TraceFlags

from ._sdk_views import all_mirror

try:
    from opentelemetry.attributes import BoundedAttributes
    from opentelemetry.sdk.trace import ReadableSpan as _ReadableSpan
    from opentelemetry.sdk.trace import SynchronousMultiSpanProcessor as _MultiProcessor
    from opentelemetry.sdk.trace import Tracer as _SdkTracer
    from opentelemetry.sdk.trace import _Span as _SdkSpan
    from opentelemetry.sdk.trace import sampling as _sampling
    from opentelemetry.sdk.trace.export import BatchSpanProcessor as _BatchProcessor
    from opentelemetry.sdk.util import BoundedList
    from opentelemetry.trace.propagation import _SPAN_KEY

    _SAMPLERS_OF_PARENT_BASED = (
        "_root",
        "_remote_parent_sampled",
        "_remote_parent_not_sampled",
        "_local_parent_sampled",
        "_local_parent_not_sampled",
    )
    # (the status a span starts with: `ReadableSpan.__init__`'s default, one object for all spans)
    _UNSET_STATUS = _ReadableSpan.__init__.__defaults__[8]  # type: ignore[index]
except (ImportError, AttributeError, IndexError, TypeError):  # no OTel SDK, or another: `start_span` and `end`
    _SdkTracer = _SdkSpan = None  # type: ignore[assignment,misc]

__all__ = ["end_span", "start_span"]

_CLIENT = SpanKind.CLIENT
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_SAMPLED_RANDOM = TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)
# The sha256 of the sources (`_sdk_views.source_digest`) of the SDK functions mirrored here, in the
# OTel SDK versions whose behaviour this module follows (1.45.1, 1.45.2).
_KNOWN_DIGESTS = frozenset(
    {
        "259160fe857681e80536a6a7fc76860763538c7a330c2f07d1b322f4cc34feae",  # Tracer.start_span
        "e5a26916cada47e7eda4e3a10c152414716fd33b66d2a8c073e42dc04de898f4",  # ParentBased.should_sample
        "addc0a471e9f1fbac7a5b38e16b8f28a00aa7d13d2ab5284f5629a3ac8ff1e82",  # StaticSampler.should_sample
        "4a4ae4ce5aca4bbe3ca967c898a508d27af34b632428305a7ea1d8ff2dde0564",  # _get_parent_trace_state
        "85dbfba0eb8c290aca3ef87fb0ced5dc58e471305ea12efe66c2cd7cabf51bdf",  # Span.__init__
        "f80de8180f346fa9d7a16e0c5a638324932c3d49a444e0a2342d983d2f3a3389",  # ReadableSpan.__init__
        "188f86acb71dffaf9027e63a51d741bdd10cea355ce463ff01574a0112a6630e",  # Span.__new__
        "8820ced8b37581696908ec2fe35837fe1f1f1a2f6a3086eb130d2c1bd6af7a78",  # Span._new_events
        "a87e77d47aa202a56d3c27bbcf6c6764348cd9150a1af54811f795173103751e",  # Span._new_links
        "d3bcfa74238ed0beecc93b1cd0f3a8a293458ed1ec10652a5dab6f9b6326fb5a",  # Span.start
        "4e57632e399477717709a8a26efd020031747f730a1d0809d7be7c548a43a7f9",  # Span.end
        "2d044223b0d10e71feb7e67234356f7e4a554032b84ced2d3af6fd1b87462c58",  # Span._readable_span
        "530d2f733f739314be02f439aa366ad8da9a52d82c709c5a1a4e68cd58e1f66b",  # BatchSpanProcessor.on_end
        "e2e8f8d84a3965e1efc95c4b4e503d77d081d4a0ae0d4185ae13d6c83cd31961",  # BatchSpanProcessor._on_ending
        "d30cc9b6e6917350ba8a68fc42a188007bfb7cd458c644277e55879e73433898",  # SynchronousMultiSpanProcessor.on_end
        "d0c0fd37d8901598e602e2adee6561b9ba8107e146ae88909b4dd3e257cfa0bf",  # SynchronousMultiSpanProcessor._on_ending
        "046bd9756a233afd468eb3d24d2b68c387dcdac0c6adac33ccedb47a8dc27cf1",  # BoundedList.__init__
        "d776de2c5562df86200aa3fc538c63037e7c566d8eaed72b09df8796b7596bdc",  # BoundedAttributes.__init__
    }
)
# An empty deque for each length limit: a copy of it is `deque(maxlen=...)`, without the keyword
# argument's parsing (~4 times the cost of the copy)
_empty_deques: dict[int | None, deque[Any]] = {}
_new_object = object.__new__
# (the sampler last checked, whether its decisions are known from the parent alone)
_checked_sampler: tuple[object, bool] = (None, False)
# (the processors tuple last checked, the batch processors' queues if the end may be mirrored)
_checked_processors: tuple[object, tuple[Any, ...] | None] = (None, None)


def _sdk_code_known() -> bool:
    """Whether every SDK function mirrored here has its known source (read once; a function
    replaced later is read again)."""
    return all_mirror(
        (
            _SdkTracer.start_span,
            _sampling.ParentBased.should_sample,
            _sampling.StaticSampler.should_sample,
            _sampling._get_parent_trace_state,
            _SdkSpan.__init__,
            _ReadableSpan.__init__,
            _SdkSpan.__new__,
            _SdkSpan._new_events,
            _SdkSpan._new_links,
            _SdkSpan.start,
            _SdkSpan.end,
            _SdkSpan._readable_span,
            _BatchProcessor.on_end,
            _BatchProcessor._on_ending,
            _MultiProcessor.on_end,
            _MultiProcessor._on_ending,
            BoundedList.__init__,
            BoundedAttributes.__init__,
        ),
        _KNOWN_DIGESTS,
    )


def start_span(tracer: Any, name: str, context: Context | None, start_time: int) -> Span:
    """`tracer.start_span(name, context, kind=CLIENT, start_time=start_time)`, with no attributes."""
    if type(tracer) is _SdkTracer and context is not None and _known_sampler(tracer.sampler):
        span = _start_known(tracer, name, context, start_time)
        if span is not None:
            return span
    return tracer.start_span(name, context, kind=_CLIENT, start_time=start_time)  # type: ignore[no-any-return]


def _known_sampler(sampler: object) -> bool:
    """Whether `sampler` is a `ParentBased` of the SDK's static samplers, and the SDK's code the one
    mirrored (checked once per sampler: a provider's sampler is replaced, never changed; a call does
    not read the SDK's functions again)."""
    global _checked_sampler
    checked, known = _checked_sampler
    if checked is sampler:
        return known
    known = (
        type(sampler) is _sampling.ParentBased
        and all(type(getattr(sampler, name, None)) is _sampling.StaticSampler for name in _SAMPLERS_OF_PARENT_BASED)
        and _sdk_code_known()
    )
    _checked_sampler = (sampler, known)
    return known


def _start_known(tracer: Any, name: str, context: Context, start_time: int) -> Span | None:
    """The span `start_span` makes where the sampler chosen records and samples; None otherwise."""
    resource = tracer.resource
    if resource is None or not tracer._is_enabled():
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
    limits = tracer._span_limits
    processor = tracer.span_processor
    span: Any = _new_object(_SdkSpan)
    # The fields `_Span.__init__` (with `ReadableSpan.__init__`) sets for `start_span`'s arguments,
    # and the start time `start` sets: the span is new, no other thread holds it yet. Stored one by
    # one in the order those `__init__`s first set them, so that they go where the class's shared
    # attribute layout has them (a dictionary's `update` builds a dictionary of its own instead,
    # ~2.5 times the cost).
    span._name = name
    span._context = SpanContext(trace_id, ids.generate_span_id(), False, flags, trace_state)
    span._kind = _CLIENT
    span._instrumentation_info = tracer.instrumentation_info
    span._instrumentation_scope = tracer._instrumentation_scope
    span._parent = parent
    span._start_time = start_time
    span._end_time = None
    # (the sampling result's attributes: none, from a static sampler given none)
    span._attributes = _bounded_attributes(limits.max_span_attributes, limits.max_span_attribute_length)
    span._events = _bounded_list(limits.max_events)
    span._links = _bounded_list(limits.max_links)
    span._resource = resource
    span._status = _UNSET_STATUS
    span._sampler = sampler
    span._trace_config = None
    span._record_exception = True
    span._set_status_on_exception = True
    span._span_processor = processor
    span._limits = limits
    span._lock = threading.Lock()
    span._record_end_metrics = tracer._tracer_metrics.start_span(parent, decision)
    processor.on_start(span, parent_context=context)
    started: Span = span
    return started


def _bounded_list(maxlen: int | None) -> Any:
    """`BoundedList(maxlen)`: its fields set as its `__init__` sets them, in the same order (the
    instance's attribute layout is the class's shared one), without the class call's layers."""
    if maxlen is not None and maxlen < 0:
        return BoundedList(maxlen)  # (the SDK's own error)
    empty = _empty_deques.get(maxlen)
    if empty is None:
        empty = _empty_deques[maxlen] = deque(maxlen=maxlen)
    bounded: Any = _new_object(BoundedList)
    bounded.dropped = 0
    bounded._dq = empty.copy()
    bounded._lock = threading.Lock()
    return bounded


def _bounded_attributes(maxlen: int | None, max_value_len: int | None) -> Any:
    """`BoundedAttributes(maxlen, None, immutable=False, max_value_len=max_value_len)`, as
    `_bounded_list` makes a `BoundedList`."""
    if (maxlen is not None and maxlen < 0) or (max_value_len is not None and max_value_len < 0):
        return BoundedAttributes(maxlen, None, immutable=False, max_value_len=max_value_len)
    attributes: Any = _new_object(BoundedAttributes)
    attributes._dict = {}
    attributes.maxlen = maxlen
    attributes.dropped = 0
    attributes.max_value_len = max_value_len
    attributes._lock = threading.Lock()
    attributes._immutable = False
    return attributes


def end_span(span: Span, end_time: int) -> None:
    """`span.end(end_time)`."""
    queues = _batch_queues(span) if type(span) is _SdkSpan else None
    if queues is None:
        span.end(end_time)
        return
    sdk_span: Any = span
    with sdk_span._lock:
        ended = sdk_span._start_time is None or sdk_span._end_time is not None
        if not ended:
            sdk_span._end_time = end_time
            sdk_span._attributes._immutable = True
    if ended:  # (not started, or ended already: the SDK's own error or warning)
        span.end(end_time)
        return
    if sdk_span._record_end_metrics:
        sdk_span._record_end_metrics()
    readable: Any = _new_object(_ReadableSpan)  # what `_readable_span` makes (stored as `_start_known` stores)
    readable._name = sdk_span._name
    readable._context = sdk_span._context
    readable._kind = sdk_span._kind
    readable._instrumentation_info = sdk_span._instrumentation_info
    readable._instrumentation_scope = sdk_span._instrumentation_scope
    readable._parent = sdk_span._parent
    readable._start_time = sdk_span._start_time
    readable._end_time = end_time
    readable._attributes = sdk_span._attributes
    readable._events = sdk_span._events
    readable._links = sdk_span._links
    readable._resource = sdk_span._resource
    readable._status = sdk_span._status
    if sdk_span._context.trace_flags.sampled:  # (each batch processor's `on_end`)
        for queue in queues:
            queue.emit(readable)


def _batch_queues(span: Any) -> tuple[Any, ...] | None:
    """The batch processors' queues a span's end goes to, where its processor is the SDK's
    multi-processor of `BatchSpanProcessor`s only (checked once per processors tuple: the SDK
    replaces it, never changes it) and the SDK's code the one mirrored; else None."""
    global _checked_processors
    try:
        multi = span._span_processor
        if type(multi) is not _MultiProcessor:
            return None
        processors = multi._span_processors
        checked, queues = _checked_processors
        if checked is not processors:
            queues = None
            if all(type(processor) is _BatchProcessor for processor in processors) and _sdk_code_known():
                queues = tuple(processor._batch_processor for processor in processors)  # type: ignore[attr-defined]
            _checked_processors = (processors, queues)
    except AttributeError:  # the SDK's internals changed: `end` still works
        return None
    return queues
