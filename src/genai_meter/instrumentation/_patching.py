"""Patching SDK methods in place, and noticing when someone else already has.

Two instrumentors wrapping the same SDK method each record the call; the peers' trackers are full of
doubled costs. genai-meter meters a call once: when the method it wraps is already wrapped by
another instrumentor (a wrapt proxy or a `__wrapped__` chain), it says so once, by name, and still
records the call only in its own wrapper.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

from opentelemetry.instrumentation.utils import unwrap
from wrapt import ObjectProxy, wrap_function_wrapper

logger = logging.getLogger("genai_meter")

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]

_MARK = "_self_genai_meter"  # `_self_` keeps wrapt from passing it to the wrapped function
_warned: set[str] = set()


def _foreign_wrapper(target: Any) -> str | None:
    """The module of another instrumentation already wrapping `target`, if any.

    Instrumentations wrap with wrapt proxies; plain `functools.wraps` decorators (which the SDKs
    use themselves) are not instrumentation and are not reported.
    """
    current = target
    for _ in range(10):
        if not isinstance(current, ObjectProxy):
            return None
        if getattr(current, _MARK, False):
            current = current.__wrapped__
            continue
        wrapper = getattr(current, "_self_wrapper", None)
        return str(getattr(wrapper, "__module__", None) or type(current).__module__)
    return None


def patch(module_name: str, class_name: str, method: str, wrapper: Wrapper) -> bool:
    """Wrap `module.Class.method`; False when the module or attribute is missing (older SDKs)."""
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, class_name)
        target = getattr(cls, method)
    except (ImportError, AttributeError):
        return False
    if getattr(target, _MARK, False):
        return True
    other = _foreign_wrapper(target)
    name = f"{module_name}.{class_name}.{method}"
    if other is not None and name not in _warned:
        _warned.add(name)
        logger.warning(
            "genai-meter: %s is already wrapped by %s; genai-meter records each call once in its own "
            "wrapper, but that instrumentation may count the call again (disable one of them with "
            "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS)",
            name,
            other,
        )
    wrap_function_wrapper(cls, method, wrapper)
    try:
        setattr(getattr(cls, method), _MARK, True)
    except AttributeError:
        pass
    return True


def unpatch(module_name: str, class_name: str, method: str) -> None:
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError):
        return
    target = getattr(cls, method, None)
    if target is not None and getattr(target, _MARK, False):
        unwrap(cls, method)
