"""Span ids of the calls genai-meter metered in this process, for the cost exporter.

The `anthropic` SDK (2.x) traces itself: inside a call that genai-meter meters, it opens its own
span, a child of ours, with the same usage on it. The exporter must not price that span again, but
it cannot see a span's parent's attributes, only its id, and the child usually ends (and is
exported) before its parent. So the instrumentors note their call spans' ids here when the call
begins. Bounded, oldest forgotten first; a few hundred kilobytes at most.
"""

from __future__ import annotations

import threading

from opentelemetry.trace import Span

from .._fork import new_lock_in_child

_LIMIT = 16_384
_lock = threading.Lock()
_ids: dict[int, None] = {}


new_lock_in_child(__name__)  # (a child forked while another thread noted a span: see `_fork`)


def remember_call_span(span: Span) -> None:
    """Note that `span` is a genai-meter call span (its children may be the SDK's own spans)."""
    span_id = span.get_span_context().span_id
    if not span_id:
        return
    with _lock:
        if len(_ids) >= _LIMIT:
            del _ids[next(iter(_ids))]
        _ids[span_id] = None


def is_call_span(span_id: int) -> bool:
    return span_id in _ids


def forget_all() -> None:
    """Tests."""
    with _lock:
        _ids.clear()
