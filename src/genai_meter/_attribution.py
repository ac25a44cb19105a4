"""Who and what caused a call: user, tenant, feature.

Sources, most specific first: `genai_meter.attribute(...)` in the calling code (a context variable, so
it follows threads started with copied contexts and asyncio tasks), then OTel baggage set by an
upstream service (keys in `genai_meter.names`), then the request's own `user` / `safety_identifier` /
`metadata.user_id`, which only ever fills the user. Attribution values are ids, never content.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import inspect
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar, cast

from opentelemetry import baggage

from . import names
from ._frozen_twins import unfrozen_twin

_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Attribution:
    user: str | None = None
    tenant: str | None = None
    feature: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


_EMPTY = Attribution()
_AttributionSlots = unfrozen_twin(Attribution)


def _new_attribution(
    user: str | None, tenant: str | None, feature: str | None, metadata: Mapping[str, Any]
) -> Attribution:
    """`Attribution(...)` for the calls' path (a block per request): a frozen dataclass's
    `__init__` is a Python frame that sets each field through `object.__setattr__`; here an
    unfrozen object of the same slots is filled in and becomes an `Attribution` (as `new_usage`)."""
    made: Any = _AttributionSlots()
    made.user = user
    made.tenant = tenant
    made.feature = feature
    made.metadata = metadata
    made.__class__ = Attribution
    attribution: Attribution = made
    return attribution


class _Frame(NamedTuple):
    """One open `attribute(...)` block: what it set, which block opened it, and what it replaced.

    The frames live in the context variable itself, so a block's exit restores the value its own
    context had, whichever thread or task shares the `attribute(...)` object (a module-level
    `SEARCH = attribute(feature="search")` used by many requests at once). A tuple: made by
    `tuple.__new__` on every block's entry, with no Python frame."""

    attribution: Attribution
    owner: object
    outer: _Frame | None


_new_frame = functools.partial(tuple.__new__, _Frame)
_ROOT = _Frame(_EMPTY, None, None)
_current: ContextVar[_Frame] = ContextVar("genai_meter_attribution", default=_ROOT)


class _Attributing:
    """Both a context manager and a decorator, so one name serves `with` and `@` uses."""

    def __init__(
        self, user: str | int | None, tenant: str | int | None, feature: str | int | None, metadata: Mapping[str, Any]
    ):
        # (text, the usual case, without a call: a block per request is entered on the app's path)
        self._values = (
            user if user is None or type(user) is str else as_text(user),
            tenant if tenant is None or type(tenant) is str else as_text(tenant),
            feature if feature is None or type(feature) is str else as_text(feature),
            dict(metadata),
        )

    def _merged(self, outer: Attribution) -> Attribution:
        user, tenant, feature, metadata = self._values
        return _new_attribution(
            user if user is not None else outer.user,
            tenant if tenant is not None else outer.tenant,
            feature if feature is not None else outer.feature,
            {**outer.metadata, **metadata} if metadata else outer.metadata,
        )

    def __enter__(self) -> Attribution:
        outer = _current.get()
        merged = self._merged(outer.attribution)
        _current.set(_new_frame((merged, self, outer)))
        return merged

    def __exit__(self, *exc: object) -> None:
        # Normally the innermost frame is this block's. A generator suspended inside the block and
        # resumed elsewhere may exit in a context where it is not open at all: then nothing changes.
        frame: _Frame | None = _current.get()
        while frame is not None and frame.owner is not self:
            frame = frame.outer
        if frame is not None and frame.outer is not None:  # (only the root has no outer frame)
            _current.set(frame.outer)

    def __call__(self, func: _F) -> _F:
        # The object holds no state of its own (the open blocks are frames in the context
        # variable), so every call and every generator step can enter this same object.
        attributing = self

        if inspect.isasyncgenfunction(func):

            @functools.wraps(func)
            async def async_gen_wrapper(*args: Any, **kwargs: Any) -> Any:
                inner = func(*args, **kwargs)
                step: Callable[[], Any] = inner.__anext__
                while True:
                    with attributing:
                        try:
                            item = await step()
                        except StopAsyncIteration:
                            return
                    try:
                        sent = yield item
                    except GeneratorExit:
                        with attributing:
                            await inner.aclose()
                        raise
                    except BaseException as error:
                        step = functools.partial(inner.athrow, error)
                    else:
                        step = functools.partial(inner.asend, sent)

            return cast(_F, async_gen_wrapper)

        if inspect.isgeneratorfunction(func):

            @functools.wraps(func)
            def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
                # The attribution is in force only while the generator's own code runs, step by
                # step: a `with` around `yield from` would leak it into the caller between items.
                inner = func(*args, **kwargs)
                step: Callable[[], Any] = functools.partial(inner.send, None)
                while True:
                    with attributing:
                        try:
                            item = step()
                        except StopIteration as stop:
                            return stop.value
                    try:
                        sent = yield item
                    except GeneratorExit:
                        with attributing:
                            inner.close()
                        raise
                    except BaseException as error:
                        step = functools.partial(inner.throw, error)
                    else:
                        step = functools.partial(inner.send, sent)

            return cast(_F, gen_wrapper)

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with attributing:
                    return await func(*args, **kwargs)

            return cast(_F, async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with attributing:
                return func(*args, **kwargs)

        return cast(_F, wrapper)


def attribute(
    user: str | int | None = None, tenant: str | int | None = None, feature: str | int | None = None, **metadata: Any
) -> _Attributing:
    """Attribute the LLM calls made inside to a user, tenant and feature.

    Use as `with genai_meter.attribute(user="u1", feature="chat"):` or as a decorator. Inner blocks
    override only the values they name. Extra keyword arguments become ledger metadata. A value that
    is not text counts as its text (`as_text`).
    """
    return _Attributing(user, tenant, feature, metadata)


def current_attribution(request_user: str | None = None) -> Attribution:
    """The attribution in force for a call now, falling back to baggage, then to the request's user."""
    explicit = _current.get().attribution
    if explicit.user is not None and explicit.tenant is not None and explicit.feature is not None:
        return explicit
    entries = baggage.get_all()
    user, tenant, feature = explicit.user, explicit.tenant, explicit.feature
    if entries:
        if user is None:
            user = _text(entries.get(names.BAGGAGE_USER))
            for key in names.BAGGAGE_USER_FALLBACKS:
                if user is not None:
                    break
                user = _text(entries.get(key))
        if tenant is None:
            tenant = _text(entries.get(names.BAGGAGE_TENANT))
        if feature is None:
            feature = _text(entries.get(names.BAGGAGE_FEATURE))
    if user is None:
        user = request_user
    if explicit.user is user and explicit.tenant is tenant and explicit.feature is feature:
        return explicit
    return _new_attribution(user, tenant, feature, explicit.metadata)


def as_text(value: object) -> str | None:
    """A value given to `attribute()`, as the text it names: `attribute(user=request.user.id)` with an
    int id is the user "42" that budget policies, baggage, the ledger and Prometheus labels name. An
    enum member built on str, int or float is its value ("search", "7"), not its `str()`
    ("Feature.SEARCH", which Python 3.10 gives an `IntEnum` too); a bool is "True" or "False"."""
    if value is None or type(value) is str:
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return int.__repr__(value)
    if isinstance(value, float):
        return float.__repr__(value)
    return str(value)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


class Pseudonymizer:
    """Replaces user ids with a keyed hash before they leave the process (spans, metrics, ledger).

    Keyed (HMAC-SHA256) rather than plain hashing, so ids cannot be recovered by hashing guesses;
    the same id always maps to the same pseudonym, so per-user reports still add up.
    """

    def __init__(self, key: str) -> None:
        self._key = key.encode()
        self._cache: dict[str, str] = {}

    def __call__(self, user: str) -> str:
        pseudonym = self._cache.get(user)
        if pseudonym is None:
            digest = hmac.new(self._key, user.encode(), hashlib.sha256).hexdigest()[:16]
            pseudonym = f"u_{digest}"
            if len(self._cache) < 100_000:
                self._cache[user] = pseudonym
        return pseudonym
