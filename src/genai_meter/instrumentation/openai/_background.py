"""Responses API background mode: a call whose usage comes later.

`responses.create(background=True)` answers at once with status `queued` (or `in_progress`) and no
usage; the model runs on, and the app later fetches the finished response (`responses.retrieve`,
polled) or cancels it. Background mode is how the longest and most expensive calls are made (o3-pro,
deep research), so finishing the call at the create with an estimate would record them at a
fraction of their cost.

So the call is held open: its span, its budget reservation and its attribution stay as the create
made them, and the first retrieve (or cancel) in this process that shows the response finished
(`completed`, `incomplete`, `failed`, `cancelled`) finishes the call with that response's usage, once.
The call's duration is then the whole background run. A response never seen finished here (fetched
by another process, or never fetched) ends, without usage and with its last status as the finish
reason, when more than `MAX_HELD` are held, after `MAX_AGE_S`, or when the process exits: its span
is exported and its budget reservation released, never left open for ever. A retrieve with
`stream=True` is not read.
"""

from __future__ import annotations

import atexit
import inspect
import threading
import time
from collections.abc import Callable
from typing import Any

from ..._call import Call
from ..._faults import record_fault
from ..._fork import reset_in_child
from .._values import RawResponses, text

MAX_HELD = 10_000
MAX_AGE_S = 24 * 3600.0
PENDING_STATUSES = frozenset(("queued", "in_progress"))


class BackgroundCalls:
    """Calls held open by response id until their response is seen finished."""

    def __init__(self) -> None:
        self._held: dict[str, tuple[Call, float, str]] = {}  # id -> (call, held since, last status)
        self._lock = threading.Lock()
        self._exit_hook = False

    def hold(self, response_id: str, call: Call, status: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._held[response_id] = (call, now, status)
            stale = self._stale(now)
            if not self._exit_hook:
                self._exit_hook = True
                atexit.register(self.end_all)
        _end_unfinished(stale)

    def _stale(self, now: float) -> list[tuple[str, tuple[Call, float, str]]]:
        """Take out the calls held too long, and the oldest beyond `MAX_HELD` (under the lock; dicts
        keep insertion order, so the oldest come first)."""
        stale: list[tuple[str, tuple[Call, float, str]]] = []
        for response_id, entry in self._held.items():
            if len(self._held) - len(stale) <= MAX_HELD and now - entry[1] < MAX_AGE_S:
                break
            stale.append((response_id, entry))
        for response_id, _entry in stale:
            del self._held[response_id]
        return stale

    def take(self, response_id: str) -> Call | None:
        with self._lock:
            entry = self._held.pop(response_id, None)
        return entry[0] if entry is not None else None

    def __len__(self) -> int:
        return len(self._held)

    def end_all(self) -> None:
        """End every call still held (at exit: spans exported, reservations released)."""
        with self._lock:
            held, self._held = list(self._held.items()), {}
        _end_unfinished(held)


def _end_unfinished(entries: list[tuple[str, tuple[Call, float, str]]]) -> None:
    for response_id, (call, _since, status) in entries:
        call.finish(usage=None, response_id=response_id, finish_reasons=(status,))


BACKGROUND = BackgroundCalls()


def _after_fork(calls: BackgroundCalls) -> None:
    """A forked child: a fresh lock (another thread may have held it), and none of the parent's calls
    (the parent finishes them; the child would count them twice)."""
    calls._lock = threading.Lock()
    calls._held = {}


reset_in_child(BACKGROUND, _after_fork)


def held_in_background(call: Call, response: Any) -> bool:
    """Hold `call` when `response` is a background response still running (no usage yet)."""
    status = getattr(response, "status", None)
    if status not in PENDING_STATUSES or getattr(response, "usage", None) is not None:
        return False
    response_id = text(getattr(response, "id", None))
    if response_id is None:
        return False
    BACKGROUND.hold(response_id, call, str(status))
    return True


def fetch_wrapper(
    raw_responses: RawResponses, finish: Callable[[Call, Any, BaseException | None], None], is_async: bool
) -> Callable[..., Any]:
    """Around `responses.retrieve` / `cancel`: a response seen finished finishes its held call.
    Nothing is metered here otherwise (fetching a response is not billed)."""

    def seen(response: Any) -> None:
        response_id = text(getattr(response, "id", None))
        if response_id is None or getattr(response, "object", None) != "response":
            return  # not a response (a retrieve with stream=True gives a stream: not read)
        if getattr(response, "status", None) in PENDING_STATUSES:
            return
        call = BACKGROUND.take(response_id)
        if call is not None:
            finish(call, response, None)

    if is_async:

        async def async_wrapper(
            wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> Any:
            result = await wrapped(*args, **kwargs)
            if len(BACKGROUND):
                try:
                    response = raw_responses.parsed(result)
                    seen(await response if inspect.isawaitable(response) else response)
                except Exception as fault:
                    record_fault("openai.background", fault)
            return result

        return async_wrapper

    def sync_wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        result = wrapped(*args, **kwargs)
        if len(BACKGROUND):
            try:
                seen(raw_responses.parsed(result))
            except Exception as fault:
                record_fault("openai.background", fault)
        return result

    return sync_wrapper
