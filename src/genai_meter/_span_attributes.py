"""Putting a call's attributes on its span without the OTel SDK cleaning each value again.

The OTel SDK (1.45) passes every attribute value it is given through a recursive type check, about
6,000 CPU instructions a value: the ~8 attributes a call starts with and the ~15 it ends with cost
~140,000 of the ~470,000 instructions that metering added to the app's thread. genai-meter builds
those values itself and they are already what the SDK would keep (str, bool, int, float, a tuple of
str). So where the span is the SDK's own, with the SDK's attribute store and no value-length limit,
they go straight into that store, under the same two locks and with the same rules: nothing on an
ended span; a store that would pass its count limit, a value of another type, another SDK or any
surprise in these internals takes the public `set_attributes`, which does the SDK's own checks.

A span is started without its attributes (they are added right after) only where nothing could read
them while it starts: a built-in sampler (they decide on the trace id and the parent, never on
attributes) and span processors whose `on_start` does nothing (the SDK's batch and simple
processors). Nothing else holds such a span yet when they are added, so they go into its store
without the locks. A custom sampler or processor is handed the attributes at the start, as ever.
Tests compare what both paths export.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Tracer

from ._sdk_spans import start_span

try:
    from opentelemetry.attributes import BoundedAttributes
    from opentelemetry.sdk.trace import SpanProcessor, SynchronousMultiSpanProcessor
    from opentelemetry.sdk.trace import Tracer as _SdkTracer
    from opentelemetry.sdk.trace import _Span as _SdkSpan
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    _NO_OP_ON_START = frozenset((SpanProcessor.on_start, BatchSpanProcessor.on_start, SimpleSpanProcessor.on_start))
except ImportError:  # no OTel SDK installed: every span takes the public API
    _SdkSpan = _SdkTracer = None  # type: ignore[assignment,misc]
    _NO_OP_ON_START = frozenset()

_CLIENT = SpanKind.CLIENT
_PLAIN_TYPES = frozenset((str, bool, int, float))
# What the SDK's own samplers describe themselves as (`get_description()`), nested in ParentBased.
_BUILT_IN_SAMPLER = re.compile(
    r"(?:ParentBased\{|root:|remoteParentSampled:|remoteParentNotSampled:|localParentSampled:"
    r"|localParentNotSampled:|AlwaysOnSampler|AlwaysOffSampler|TraceIdRatioBased\{[0-9.eE+-]*\}|,|\})+"
)
# (the processors tuple and the sampler last checked, whether nothing reads the attributes at the
# start with them): one tuple, so that threads replacing it never pair a set-up with another's answer
_checked: tuple[object, object, bool] = ((), None, False)


def _plain(attributes: Mapping[str, Any]) -> bool:
    return all(is_plain_value(value) for value in attributes.values())


def _store_taking(span: Span, attributes: Mapping[str, Any]) -> Any:
    """The SDK span's attribute store when `attributes` may go straight into it (no value-length
    limit, room under the count limit), else None: the SDK must add them."""
    if type(span) is not _SdkSpan:
        return None
    try:
        store: Any = span._attributes  # type: ignore[attr-defined]
        if (
            type(store) is BoundedAttributes
            and store.max_value_len is None
            and not store._immutable
            and (store.maxlen is None or len(store._dict) + len(attributes) <= store.maxlen)
        ):
            return store
    except AttributeError:  # the SDK's internals changed: its public API still works
        pass
    return None


def _add_plain(span: Span, attributes: Mapping[str, Any], store: Any = None) -> bool:
    """Put plain `attributes` straight into an SDK span's store; False where the SDK must do it.
    `store`: the span's store as `_store_taking` found it at the span's start (its kind and limits
    do not change; only its count is checked again)."""
    if store is None:
        store = _store_taking(span, attributes)
        if store is None:
            return False
    elif store.maxlen is not None and len(store._dict) + len(attributes) > store.maxlen:
        return False
    with span._lock:  # type: ignore[attr-defined]
        if span._end_time is None:  # type: ignore[attr-defined]
            with store._lock:
                store._dict.update(attributes)
            return True
    return False


def add_span_attributes(
    span: Span, attributes: Mapping[str, Any], plain: bool | None = None, store: Any = None
) -> None:
    """`span.set_attributes(attributes)`, without the per-value cleaning where it is redundant.

    `plain`: the caller's own verdict on the values, where it has one (made plain by construction,
    the rest checked with `is_plain_value`: a call's end attributes, ~300 opcodes less than checking
    all); without it they are checked here. `store`: what `start_client_span` returned with
    the span, if anything."""
    if plain is None:
        plain = type(span) is _SdkSpan and _plain(attributes)
    if not (plain and _add_plain(span, attributes, store)):
        span.set_attributes(attributes)


def is_plain_value(value: object) -> bool:
    """Whether the SDK's store would keep `value` as it is (`_plain`'s rule, for one value)."""
    kind = type(value)
    if kind is tuple and isinstance(value, tuple):
        for item in value:  # noqa: SIM110 (a loop: `all()` of a generator makes a frame, per call)
            if type(item) is not str:
                return False
        return True
    return kind in _PLAIN_TYPES


def _start_attributes_unread(tracer: Tracer) -> bool:
    """Whether nothing reads a span's attributes while the SDK starts it (see the module's doc).

    Asked at every call's start: the answer is kept with the processors tuple and the sampler it was
    made for (both replaced, never changed, when the provider's set-up changes)."""
    global _checked
    if type(tracer) is not _SdkTracer:
        return False
    try:
        multi = tracer.span_processor  # type: ignore[attr-defined]
        processors = multi._span_processors
        sampler = tracer.sampler  # type: ignore[attr-defined]
    except AttributeError:
        return False
    checked_processors, checked_sampler, unread = _checked
    if checked_processors is processors and checked_sampler is sampler:
        return unread
    unread = (
        type(multi) is SynchronousMultiSpanProcessor
        and all(type(processor).on_start in _NO_OP_ON_START for processor in processors)
        and _BUILT_IN_SAMPLER.fullmatch(str(sampler.get_description())) is not None
    )
    _checked = (processors, sampler, unread)
    return unread


def start_client_span(
    tracer: Tracer, name: str, attributes: dict[str, Any], start_time: int, context: Context | None = None
) -> tuple[Span, Any]:
    """`tracer.start_span(name, context, kind=CLIENT, attributes=..., start_time=...)`, the attributes
    added without the SDK's cleaning where nothing reads them during the start; with the span, its
    attribute store where they went straight into it (else None), for `add_span_attributes` at the
    span's end to use without finding it again.

    The caller hands plain values only (str, bool, int, float: a call's start attributes are made
    so by `_call`, from text the request and the attribution hold), so they are not checked again
    here; any other value would reach the SDK's store uncleaned. Under `_start_attributes_unread`
    no other thread can hold the new span yet (no processor kept it at its start), so the store is
    filled without the two locks; its own limits are checked all the same. There, `attributes`
    becomes the store's own dictionary: the caller hands one it keeps no hold of."""
    if _start_attributes_unread(tracer):
        span = start_span(tracer, name, context, start_time)
        store = _store_taking(span, attributes)
        if store is None:
            span.set_attributes(attributes)
        elif store._dict:
            store._dict.update(attributes)
        else:  # (a new span's empty store takes the caller's dictionary itself: see above)
            store._dict = attributes
        return span, store
    # (a custom sampler or processor is handed what it always was: None, the current context)
    return tracer.start_span(name, kind=_CLIENT, attributes=attributes, start_time=start_time), None
