"""Reading SDK request arguments and results the same way for every provider.

The SDKs fill omitted arguments with sentinels (`omit`, `NOT_GIVEN`); these readers treat anything
that is not a real value as absent. Text length is only ever counted (for estimates), never kept.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar

from ._metering import ResponseError

_TEXT_KEYS = ("content", "text", "input", "arguments", "parts")


_Info = TypeVar("_Info")


class ClientCache(Generic[_Info]):
    """What a provider's client object resolves to (provider, server, ...), kept per client and made
    again under a new runtime (`configure()`): a call pays a dict lookup, not a URL's parsing.

    Keyed by the client's `id`, each entry holding a weak reference to its client, whose callback
    removes it: a `WeakKeyDictionary` makes a weak reference and runs two Python frames per look-up."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[int, tuple[weakref.ref[Any], object, _Info]] = {}

    def get(self, client: Any, runtime: object) -> _Info | None:
        entry = self._entries.get(id(client))
        if entry is not None and entry[1] is runtime and entry[0]() is client:
            return entry[2]
        return None

    def put(self, client: Any, runtime: object, info: _Info) -> _Info:
        key = id(client)
        try:
            held = weakref.ref(client, functools.partial(self._forget, key))
        except TypeError:  # (a client that takes no weak reference: worked out per call)
            return info
        self._entries[key] = (held, runtime, info)
        return info

    def _forget(self, key: int, held: weakref.ref[Any]) -> None:
        entry = self._entries.get(key)
        if entry is not None and entry[0] is held:
            self._entries.pop(key, None)


def configured_provider(host: str, port: object, configured: Mapping[str, str]) -> str | None:
    """The provider `provider_hosts` names for a server (`host:port` first, then `host`), if any."""
    for key in (f"{host}:{port}", host):
        if key in configured:
            return configured[key]
    return None


def text(value: Any) -> str | None:
    """A request argument if it is real text."""
    return value if isinstance(value, str) and value else None


def number(value: Any) -> int | None:
    """A request argument if it is a positive whole number."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def content_chars(value: Any, depth: int = 0) -> int:
    """Characters of text in messages / input / contents (dicts, lists or SDK objects)."""
    if isinstance(value, str):
        return len(value)
    if depth > 6 or value is None:
        return 0
    if isinstance(value, list | tuple):
        return sum(content_chars(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return sum(content_chars(value[key], depth + 1) for key in _TEXT_KEYS if key in value)
    return sum(content_chars(getattr(value, key, None), depth + 1) for key in ("text", "parts", "content"))


def raw_response_types(package: str) -> tuple[type[Any], ...]:
    """The raw-response classes of a Stainless-generated SDK (`with_raw_response`, streaming)."""
    return sdk_classes(
        (
            f"{package}._legacy_response.LegacyAPIResponse",
            f"{package}._response.APIResponse",
            f"{package}._response.AsyncAPIResponse",
        )
    )


class RawResponses:
    """Recognises an SDK's raw responses (`with_raw_response`, `with_streaming_response`) and gives
    the object behind them; the SDK caches what `parse()` returns, so the app's own `parse()` later
    gets the same (metered) object."""

    def __init__(self, package: str) -> None:
        self.package = package
        self.types: tuple[type[Any], ...] = ()

    def load(self) -> None:
        """Find the classes (at instrument time, when the SDK is importable)."""
        self.types = raw_response_types(self.package)

    def is_raw(self, result: Any) -> bool:
        return isinstance(result, self.types)

    def parsed(self, result: Any) -> Any:
        """What a raw response parses to (an awaitable for an async one); any other result as it is.
        An exception of the SDK's own `parse()` (a body that is not JSON, content that fails
        validation) is raised as `ResponseError`: the call's error, not genai-meter's fault."""
        if not isinstance(result, self.types):
            return result
        try:
            parsed = result.parse()
        except Exception as error:
            raise ResponseError(error) from error
        return _parsed_async(parsed) if inspect.isawaitable(parsed) else parsed


async def _parsed_async(parsed: Awaitable[Any]) -> Any:
    try:
        return await parsed
    except Exception as error:
        raise ResponseError(error) from error


@functools.cache
def sdk_classes(dotted_names: tuple[str, ...]) -> tuple[type[Any], ...]:
    """The SDK classes named `module.Name` that exist in the installed SDK version (looked up once)."""
    found: list[type[Any]] = []
    for dotted in dotted_names:
        module, _, name = dotted.rpartition(".")
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def received_response(error: BaseException, kind: type[Any] | tuple[type[Any], ...]) -> Any:
    """The response (an instance of `kind`, or of one of several) that the SDK had received and built when it raised
    `error`, or None.

    The SDKs' structured-output helpers validate a completion after it has arrived, and been billed.
    When that fails, the exception may carry the completion (openai's `LengthFinishReasonError` has
    it as `.completion`) or not (pydantic's `ValidationError`); either way the SDK's own frames that
    it went through held it (the SDK hands the built response to its post-parser), and those frames
    are in the exception's traceback, where it is found by type. Only ever run on the error path:
    nothing is kept or serialised for a call that succeeds.
    """
    attached = getattr(error, "completion", None)
    if isinstance(attached, kind):
        return attached
    trace = error.__traceback__
    trace = trace.tb_next if trace is not None else None  # the first frame caught it: genai-meter's own
    while trace is not None:
        for value in trace.tb_frame.f_locals.values():
            if isinstance(value, kind):
                return value
        trace = trace.tb_next
    return None


def finish_received(
    response_classes: tuple[str, ...], finish: Callable[[Any, Any, BaseException], None]
) -> Callable[[Any, BaseException], None]:
    """A `Metered.on_error` for an SDK call that can raise after a whole response arrived (structured
    output it could not parse, an answer cut at the length limit): that response was billed, so the
    call is finished with it (`finish(call, response, error)`), the SDK's error being the outcome. When
    there is none, `_metering` ends the call with the error alone."""

    def on_error(call: Any, error: BaseException) -> None:
        received = received_response(error, sdk_classes(response_classes))
        if received is not None:
            finish(call, received, error)

    return on_error
