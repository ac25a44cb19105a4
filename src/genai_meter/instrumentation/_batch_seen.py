"""The batch results already metered in this process, so that reading them again meters nothing.

A batch's results can be read any number of times (the Anthropic results stream, an OpenAI output
file downloaded twice); each is billed once. Bounded: the oldest ids are forgotten first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

_SEEN_MAX = 100_000
_seen: OrderedDict[str, None] = OrderedDict()  # ids metered, oldest first
_lock = threading.Lock()


def first_time(result_id: str) -> bool:
    """True the first time `result_id` is offered (it is then kept), False after."""
    with _lock:
        if result_id in _seen:
            return False
        _seen[result_id] = None
        if len(_seen) > _SEEN_MAX:
            _seen.popitem(last=False)
        return True
