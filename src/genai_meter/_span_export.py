"""Whether a call's ending may wait for a background drain, and what makes a flush wait for it.

Ending a call (pricing, span attributes and end, metric sums, ledger row) is ~40 % of what metering
costs it. Where the span goes to the OTel SDK's `BatchSpanProcessor`, nothing reads it at its end:
the processor queues it and exports it later, from its own thread. There, the ending is made off
the app's thread (`_metrics._DeferredRecords.defer`), with the span's end time taken when the call
ended, so what is exported is the same. Two moments must not miss a deferred ending, and both reach
the span processors: the tracer provider's `force_flush()` (tests, a batch job before it exits) and
its `shutdown()` (at exit). So a processor of genai-meter's is put first in the provider's list,
which records what is deferred before the batch processors flush or shut down.

Any other processor (the SDK's `SimpleSpanProcessor`, a custom one: they may read the span as it
ends) or anything unexpected in these internals, and the call ends on the app's thread, as ever.
"""

from __future__ import annotations

from opentelemetry.trace import Tracer

from ._metrics import drain_all

try:
    from opentelemetry.sdk.trace import SpanProcessor, SynchronousMultiSpanProcessor
    from opentelemetry.sdk.trace import Tracer as _SdkTracer
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
except ImportError:  # no OTel SDK installed: no span is deferred
    _SdkTracer = None  # type: ignore[assignment,misc]
    SpanProcessor = object  # type: ignore[assignment,misc]


class DeferredEndings(SpanProcessor):  # type: ignore[misc,valid-type]
    """Records the deferred call endings when the provider is flushed or shut down; its `on_start`
    and `on_end` are the SDK's no-ops."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        drain_all()
        return True

    def shutdown(self) -> None:
        drain_all()


# (the processors tuple last checked, whether endings may be deferred with it): one tuple, so that
# threads replacing it never pair one tuple with another's answer
_checked: tuple[object, bool] = ((), False)


def _batch_only(processors: tuple[object, ...]) -> bool:
    return all(type(processor) in (BatchSpanProcessor, DeferredEndings) for processor in processors)


def endings_deferrable(tracer: Tracer) -> bool:
    """Whether the calls whose spans `tracer` makes may end off the app's thread (see the module's
    doc); puts `DeferredEndings` first among the provider's processors when they allow it."""
    global _checked
    if _SdkTracer is None or type(tracer) is not _SdkTracer:
        return False
    try:
        multi = tracer.span_processor  # type: ignore[attr-defined]
        processors = multi._span_processors
        checked, deferrable = _checked
        if checked is processors:
            return deferrable
        deferrable = (
            type(multi) is SynchronousMultiSpanProcessor
            and bool(processors)
            and _batch_only(processors)
        )
        if deferrable and type(processors[0]) is not DeferredEndings:
            with multi._lock:
                current = multi._span_processors
                if _batch_only(current) and not any(type(p) is DeferredEndings for p in current):
                    multi._span_processors = (DeferredEndings(), *current)
            processors = multi._span_processors
            deferrable = type(processors[0]) is DeferredEndings and _batch_only(processors)
        _checked = (processors, deferrable)
        return deferrable
    except AttributeError:  # the SDK's internals changed: end on the app's thread
        return False
