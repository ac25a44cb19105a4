"""Whether a call's ending may wait for a background drain, and what makes a flush wait for it.

Ending a call (pricing, span attributes and end, metric sums, ledger row) is about half of what
metering costs it. Where the span goes to the OTel SDK's `BatchSpanProcessor`, nothing reads it at
its end: the processor queues it and exports it later, from its own thread. There, the ending is
made off the app's thread (`_metrics._DeferredRecords.defer`), with the span's end time taken when
the call ended, so what is exported is the same. Two moments must not miss a deferred ending: a
flush (tests, a batch job or a serverless function before it returns) and the shutdown at exit.
Apps reach them through the tracer provider or through the processor they made themselves, so it
is the `BatchSpanProcessor` class's own `force_flush` and `shutdown` that first record what is
deferred (wrapped once, for every instance; `uninstrument()` leaves them, as they only drain).

Any other processor (the SDK's `SimpleSpanProcessor`, a custom one: they may read the span as it
ends) or anything unexpected in these internals, and the call ends on the app's thread, as ever.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from opentelemetry.trace import Tracer

from ._faults import record_fault
from ._metrics import drain_all

try:
    from opentelemetry.sdk.trace import SynchronousMultiSpanProcessor
    from opentelemetry.sdk.trace import Tracer as _SdkTracer
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
except ImportError:  # no OTel SDK installed: no span is deferred
    _SdkTracer = None  # type: ignore[assignment,misc]

_DRAINS = "_genai_meter_drains_first"
_wrap_lock = threading.Lock()
# (the processors tuple last checked, whether endings may be deferred with it): one tuple, so that
# threads replacing it never pair one tuple with another's answer
_checked: tuple[object, bool] = ((), False)


def _draining_first(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            drain_all()
        except Exception as fault:  # (the flush itself must still happen)
            record_fault("span_export.drain", fault)
        return method(*args, **kwargs)

    setattr(wrapper, _DRAINS, True)
    return wrapper


def _batch_flushes_drain() -> bool:
    """Make `BatchSpanProcessor.force_flush` and `.shutdown` record deferred endings first (once)."""
    with _wrap_lock:
        for name in ("force_flush", "shutdown"):
            method = getattr(BatchSpanProcessor, name)
            if not getattr(method, _DRAINS, False):
                setattr(BatchSpanProcessor, name, _draining_first(method))
    return True


def endings_deferrable(tracer: Tracer) -> bool:
    """Whether the calls whose spans `tracer` makes may end off the app's thread (see the module's
    doc): every span processor of its provider is the SDK's `BatchSpanProcessor`."""
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
            and all(type(processor) is BatchSpanProcessor for processor in processors)
            and _batch_flushes_drain()
        )
        _checked = (processors, deferrable)
        return deferrable
    except AttributeError:  # the SDK's internals changed: end on the app's thread
        return False
