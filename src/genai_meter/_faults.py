"""Catching genai-meter's own faults so the host app never sees them.

Every fault is logged once per place (with its traceback, so it can be fixed) and counted per place,
and the counts are exported as `genai_meter_faults_total{where=...}`. Logging once matters: a fault on
the hot path would otherwise write a traceback per LLM call.

What is logged is the place, the exception's type, the code path and its message, where a validation
error's message is reduced to its locations and error types: it quotes the input it rejected, which
may be a prompt or a completion, and content never reaches the logs unless the user opted in to
content capture. Other messages are cut to a few hundred characters.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from ._fork import new_lock_in_child

logger = logging.getLogger("genai_meter")

_P = ParamSpec("_P")
_R = TypeVar("_R")

_lock = threading.Lock()
_counts: dict[str, int] = {}


new_lock_in_child(__name__)  # (a child forked while another thread counted a fault: see `_fork`)


def record_fault(where: str, error: BaseException | None = None) -> None:
    """Count a fault at `where`; log it the first time that place faults."""
    with _lock:
        first = where not in _counts
        _counts[where] = _counts.get(where, 0) + 1
    if first:
        if error is not None:
            logger.warning(
                "genai-meter fault in %s (the app's call is unaffected; further faults here are only "
                "counted in genai_meter_faults_total): %s: %s%s",
                where,
                type(error).__name__,
                safe_message(error),
                "".join("\n" + line.rstrip() for line in traceback.format_tb(error.__traceback__)),
            )
        else:
            logger.warning("genai-meter fault in %s (further ones are only counted)", where)


_MAX_MESSAGE_CHARS = 300


def safe_message(error: BaseException) -> str:
    """The error's message without the values it may quote.

    pydantic's validation errors (and the SDK errors built on them) print the rejected input: only
    their locations and error types are kept. Other messages are cut to a few hundred characters."""
    errors = getattr(error, "errors", None)
    if type(error).__module__.startswith("pydantic") and callable(errors):
        try:
            found = errors(include_input=False, include_context=False, include_url=False)
            return "; ".join(
                f"{'.'.join(str(part) for part in item.get('loc', ()))}: {item.get('type')}" for item in found
            )
        except Exception:
            return f"{type(error).__name__} (message withheld)"
    text = str(error)
    return text if len(text) <= _MAX_MESSAGE_CHARS else text[:_MAX_MESSAGE_CHARS] + "..."


def fault_counts() -> dict[str, int]:
    """A snapshot of fault counts per place."""
    with _lock:
        return dict(_counts)


def reset_faults() -> None:
    """Forget counts and logged places (tests)."""
    with _lock:
        _counts.clear()


def guarded(where: str, default: _R) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Decorate a helper so any exception in it is recorded as a fault and `default` returned."""

    def decorate(func: Callable[_P, _R]) -> Callable[_P, _R]:
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return func(*args, **kwargs)
            except Exception as error:
                record_fault(where, error)
                return default

        wrapper.__name__ = func.__name__
        wrapper.__doc__ = func.__doc__
        return wrapper

    return decorate
