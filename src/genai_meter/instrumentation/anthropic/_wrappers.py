"""The wrappers placed around the Anthropic SDK's billing methods.

`messages.create` / `.parse` (and their beta twins) send the request when called; the
`messages.stream` helper returns a manager that sends it on `__enter__`. The manager's request is
replaced by a metered one as the SDK builds the manager (its `__init__` is wrapped, and acts only
inside a `stream` call, which notes the call's arguments in a context variable), not on the object
`stream` returns: another instrumentation (OpenLLMetry) may return its own object around the SDK's
manager, and the request is then metered all the same, once. Either way the SDK's own `Stream` is
metered in place, so its helpers (`text_stream`, `get_final_message`, `until_done`) work unchanged.
A fault in genai-meter's part is recorded and the SDK is called as if uninstrumented; only
`BudgetExceeded` reaches the app.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from typing import Any, NamedTuple

from ..._call import begin_call
from ..._faults import record_fault
from ..._runtime import get_runtime
from ...exporter._metered import remember_call_span
from .._metering import Metered, budget_estimate, capture_input, metered_call, metered_call_async
from .._sse_bytes import EventItemMeter, meter_response_bytes
from .._streams import meter_async_stream, meter_stream
from .._values import RawResponses, content_chars, finish_received, number, text
from ._observers import MessageStreamObserver, finish_message
from ._request import client_info, metadata_user

OPERATION = "chat"
RAW_RESPONSES = RawResponses("anthropic")


class Request(NamedTuple):
    model: str
    stream: bool
    user: str | None
    max_tokens: int | None
    system: Any
    messages: Any

    def prompt_chars(self) -> int:
        return content_chars(self.system) + content_chars(self.messages)

    def prompt(self) -> dict[str, Any]:
        return {"system": self.system, "messages": self.messages}


def _read_request(kwargs: dict[str, Any], stream: bool) -> Request:
    return Request(
        model=text(kwargs.get("model")) or "unknown",
        stream=stream,
        user=metadata_user(kwargs.get("metadata")),
        max_tokens=number(kwargs.get("max_tokens")),
        system=kwargs.get("system"),
        messages=kwargs.get("messages"),
    )


def _begin(instance: Any, kwargs: dict[str, Any], stream: bool, is_async: bool) -> Metered:
    runtime = get_runtime()
    info = client_info(instance, runtime)
    request = _read_request(kwargs, stream)
    call = begin_call(
        runtime,
        info.provider,
        OPERATION,
        request.model,
        info.server,
        request.stream,
        request.user,
        budget_estimate(runtime, info.provider, request.model, request.prompt_chars, request.max_tokens),
        prompt_chars=request.prompt_chars,
    )
    remember_call_span(call.span)
    capture_input(runtime, call, "anthropic", request.prompt)

    def finish(parsed: Any) -> Any:
        if request.stream:
            observer = MessageStreamObserver(call, request.prompt_chars)
            return (meter_async_stream if is_async else meter_stream)(parsed, observer)
        finish_message(call, parsed)
        return parsed

    def finish_raw(parsed: Any) -> Any:
        # The app may read a raw stream's lines (`iter_lines()`), never the SDK's stream: metered
        # from the bytes both ways go through.
        if request.stream and meter_response_bytes(
            parsed, EventItemMeter(MessageStreamObserver(call, request.prompt_chars)), is_async
        ):
            return parsed
        return finish(parsed)

    def on_result(result: Any) -> Any:
        if not RAW_RESPONSES.is_raw(result):
            return finish(result)
        # A raw response: meter what it parses to (the SDK caches it, so the app's `parse()` gets it).
        # The SDK's own parse failing is the call's error (`ResponseError`), not genai-meter's fault.
        parsed = RAW_RESPONSES.parsed(result)
        if inspect.isawaitable(parsed):
            return _then(parsed, finish_raw, result)
        finish_raw(parsed)
        return result

    # `messages.parse` output that fails validation: the message was billed (`ParsedMessage` is one)
    return Metered(call, kwargs, on_result, _ON_ERROR)


_ON_ERROR = finish_received(("anthropic.types.Message", "anthropic.types.beta.BetaMessage"), finish_message)


async def _then(parsed: Any, finish: Callable[[Any], Any], result: Any) -> Any:
    finish(await parsed)
    return result


def sync_wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """`Messages.create` / `.parse` (sync)."""
    return metered_call(
        "anthropic",
        lambda kw: wrapped(*args, **kw),
        kwargs,
        lambda kw: _begin(instance, kw, kw.get("stream") is True, False),
    )


async def async_wrapper(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """`AsyncMessages.create` / `.parse`."""
    return await metered_call_async(
        "anthropic",
        lambda kw: wrapped(*args, **kw),
        kwargs,
        lambda kw: _begin(instance, kw, kw.get("stream") is True, True),
    )


class _HelperCall:
    """A `messages.stream` call whose manager the SDK is building."""

    __slots__ = ("instance", "kwargs", "taken")

    def __init__(self, instance: Any, kwargs: dict[str, Any]) -> None:
        self.instance = instance
        self.kwargs = kwargs
        self.taken = False


_helper_call: ContextVar[_HelperCall | None] = ContextVar("genai_meter_anthropic_stream_call", default=None)


def stream_wrapper(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """`Messages.stream` / `AsyncMessages.stream`: note the call for the manager the SDK builds in it."""
    helper = _HelperCall(instance, kwargs)
    token = _helper_call.set(helper)
    try:
        manager = wrapped(*args, **kwargs)
    finally:
        _helper_call.reset(token)
    if not helper.taken:  # an SDK that builds its manager some other way: the helper goes unmetered
        record_fault("anthropic.stream_manager", None)
    return manager


def manager_init_wrapper(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """`MessageStreamManager.__init__` and its async and beta twins: inside a `stream` call, the
    manager is given a metered request in place of the SDK's (`api_request`, its first argument)."""
    helper = _helper_call.get()
    if helper is None or helper.taken:
        return wrapped(*args, **kwargs)
    helper.taken = True
    try:
        metered = _metered_request(args[0] if args else kwargs["api_request"], helper)
    except Exception as fault:
        record_fault("anthropic.stream_manager", fault)
        return wrapped(*args, **kwargs)
    if args:
        return wrapped(metered, *args[1:], **kwargs)
    return wrapped(**{**kwargs, "api_request": metered})


def _metered_request(original: Any, helper: _HelperCall) -> Any:
    """The manager's request, metered: a callable (sync manager) or a coroutine (async manager)."""
    instance, kwargs = helper.instance, helper.kwargs
    if inspect.iscoroutine(original):
        return _metered_async_request(original, instance, kwargs)

    def request() -> Any:
        return metered_call("anthropic", lambda _kw: original(), kwargs, lambda kw: _begin(instance, kw, True, False))

    return request


async def _metered_async_request(original: Coroutine[Any, Any, Any], instance: Any, kwargs: dict[str, Any]) -> Any:
    async def send(_kw: dict[str, Any]) -> Any:
        return await original

    try:
        return await metered_call_async("anthropic", send, kwargs, lambda kw: _begin(instance, kw, True, True))
    finally:
        original.close()  # never awaited when a budget stopped the call; a no-op once awaited
