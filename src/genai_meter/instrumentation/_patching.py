"""Patching SDK methods in place, noticing when someone else already has, and coming off cleanly.

Two instrumentors wrapping the same SDK method each record the call; the peers' trackers are full of
doubled costs. genai-meter meters a call once: when the method it wraps is already wrapped by
another instrumentation (a wrapt proxy), it says so once per instrumentation and SDK, and still
records the call only in its own wrapper.

Layers stack: an instrumentation that wraps after genai-meter sits outside it. `unpatch` therefore
finds genai-meter's own layer wherever it is in the chain (it never strips whatever is outermost),
and takes it out. Every layer is built with a switch (wrapt's `enabled`) that `unpatch` turns off
first: the SDKs keep bound methods (`with_raw_response`, `with_streaming_response` cache them per
client resource), and those copies then pass straight through to the SDK too. A later `patch` of a
method the SDK still has as genai-meter left it puts the very same layer back and switches it on, so
those copies meter again, and a call is still metered by one layer only; where another wrapper came
in between, a new layer goes on, and copies of the old one stay pass-throughs. The switch is a list,
whose truth wrapt reads in C on each call: nothing is added to a metered call's path.

Layers are recognised by identity (a registry of genai-meter's proxies), never by an attribute on
the proxy: a wrapt proxy passes a lookup it cannot answer to the object it wraps, so an outer peer's
proxy would seem to carry genai-meter's mark.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from wrapt import BoundFunctionWrapper, FunctionWrapper, wrap_object

try:  # wrapt 2: FunctionWrapper derives from BaseObjectProxy, not from ObjectProxy
    from wrapt import BaseObjectProxy as _Proxy
except ImportError:  # wrapt 1: ObjectProxy is the base of every proxy
    from wrapt import ObjectProxy as _Proxy  # type: ignore[assignment]

logger = logging.getLogger("genai_meter")

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]

_MAX_DEPTH = 16  # wrappers in one chain; deeper is a cycle or not worth following


@dataclass(eq=False, slots=True)
class _Layer:
    """genai-meter's wrapper around one SDK method."""

    proxy: Any  # the FunctionWrapper set on the class
    live: list[bool]  # its `enabled`: non-empty while instrumented
    owned: bool  # the class defined the method itself (else it was inherited, and is deleted again)

    def is_this(self, candidate: Any) -> bool:
        """`candidate` is this layer, or this layer bound to no instance (which OTel's `unwrap` of an
        outer peer leaves on the class with wrapt 2)."""
        return candidate is self.proxy or (
            isinstance(candidate, BoundFunctionWrapper) and candidate._self_parent is self.proxy
        )


_layers: dict[tuple[type[Any], str], _Layer] = {}
# Layers taken off by `unpatch`, kept to be put back as they were: the SDKs' cached copies of them
# (`with_raw_response` on a client made while instrumented) then meter again, still as one layer.
_retired: dict[tuple[type[Any], str], _Layer] = {}
_warned: set[tuple[str, str]] = set()  # (SDK package, other instrumentation)
_left_disabled: set[str] = set()


def _raw(cls: type[Any], method: str) -> Any:
    """The attribute as stored (not bound), from the class or the base it is inherited from."""
    for klass in cls.__mro__:
        if method in vars(klass):
            return vars(klass)[method]
    raise AttributeError(method)


def _foreign_wrapper(target: Any) -> str | None:
    """The module of another instrumentation already wrapping `target`, if any (genai-meter's own layer
    is known by identity before this is asked). Instrumentations wrap with wrapt proxies; plain
    `functools.wraps` decorators (which the SDKs use themselves) are not instrumentation."""
    if not isinstance(target, _Proxy):
        return None
    wrapper = getattr(target, "_self_wrapper", None)
    return str(getattr(wrapper, "__module__", None) or type(target).__module__)


def _in_chain(top: Any, layer: _Layer) -> bool:
    current = top
    for _ in range(_MAX_DEPTH):
        if layer.is_this(current):
            return True
        current = getattr(current, "__wrapped__", None)
        if current is None:
            return False
    return False


def patch(module_name: str, class_name: str, method: str, wrapper: Wrapper) -> bool:
    """Wrap `module.Class.method`; False when the module or attribute is missing (older SDKs)."""
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, class_name)
        target = _raw(cls, method)
    except (ImportError, AttributeError):
        return False
    key = (cls, method)
    layer = _layers.get(key)
    if layer is not None:
        if _in_chain(target, layer):
            if not layer.live:  # left in the chain, switched off, by an earlier `unpatch`
                layer.live.append(True)
            return True
        del _layers[key]  # replaced by someone else since: wrap what is there now
    retired = _retired.pop(key, None)
    if retired is not None and retired.proxy.__wrapped__ is target:
        # The SDK's method as genai-meter left it: the same layer goes back on, switched on again.
        setattr(cls, method, retired.proxy)
        retired.live.append(True)
        _layers[key] = retired
        return True
    name = f"{module_name}.{class_name}.{method}"
    other = _foreign_wrapper(target)
    if other is not None:
        _warn_wrapped(name, other)
    live = [True]
    owned = method in vars(cls)
    # The list as `enabled`: wrapt tests its truth in C on every call (a callable would be a call).
    proxy = wrap_object(cls, method, FunctionWrapper, (wrapper, cast(Any, live)))
    _layers[key] = _Layer(proxy, live, owned)
    return True


def _warn_wrapped(name: str, other: str) -> None:
    """Once per SDK and other instrumentation: it usually wraps several methods."""
    key = (name.split(".", 1)[0], other)
    if key in _warned:
        logger.debug("genai-meter: %s is also wrapped by %s", name, other)
        return
    _warned.add(key)
    logger.warning(
        "genai-meter: %s (and maybe other methods of the same SDK) is already wrapped by %s; genai-meter "
        "records each call once in its own wrapper, but that instrumentation may count the call again "
        "(disable one of them with OTEL_PYTHON_DISABLED_INSTRUMENTATIONS)",
        name,
        other,
    )


def unpatch(module_name: str, class_name: str, method: str) -> None:
    """Take genai-meter's layer off `module.Class.method`, wherever it is in the chain of wrappers.

    Its switch goes off first, so copies of it that the SDK cached pass through. The layer is then
    removed: from the class when it is outermost (restoring the SDK's own method when genai-meter was
    alone), or from the wrapt proxy just outside it. Under a wrapper that is not a wrapt proxy it
    cannot be taken out without losing that wrapper: it stays there switched off (a pass-through),
    and is switched on again by the next `patch`.
    """
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError):
        return
    key = (cls, method)
    layer = _layers.get(key)
    if layer is None:
        return
    layer.live.clear()
    if _remove(cls, method, layer):
        del _layers[key]
        _retired[key] = layer
        return
    name = f"{module_name}.{class_name}.{method}"
    if name not in _left_disabled:
        _left_disabled.add(name)
        logger.info(
            "genai-meter: %s was wrapped again after genai-meter by a wrapper that is not a wrapt proxy; "
            "genai-meter's layer stays under it switched off, passing calls straight to the SDK",
            name,
        )


def _remove(cls: type[Any], method: str, layer: _Layer) -> bool:
    """Take `layer` out of the chain on `cls.method`; False when a non-wrapt wrapper holds it."""
    top = vars(cls).get(method)
    original = layer.proxy.__wrapped__
    if layer.is_this(top):
        if layer.owned:
            setattr(cls, method, original)
        else:
            delattr(cls, method)
        return True
    outer = top
    for _ in range(_MAX_DEPTH):
        inner = getattr(outer, "__wrapped__", None)
        if inner is None:
            return True  # not in the chain any more: nothing to take out
        if layer.is_this(inner):
            if not isinstance(outer, _Proxy):
                return False
            outer.__wrapped__ = original  # a wrapt proxy calls whatever it wraps now
            # A peer's layer bound to no instance (left on the class by OTel's `unwrap` of a layer
            # outside it) binds through the layer it came from: that one must let go of ours too.
            parent = outer._self_parent if isinstance(outer, BoundFunctionWrapper) else None
            if isinstance(parent, _Proxy) and layer.is_this(parent.__wrapped__):
                parent.__wrapped__ = original
            return True
        outer = inner
    return True
