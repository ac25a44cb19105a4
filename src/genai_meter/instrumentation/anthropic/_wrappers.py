"""The wrappers placed around the Anthropic SDK's billing methods.

`messages.create` / `.parse` (and their beta twins) send the request when called; the
`messages.stream` helper returns a manager that sends it on `__enter__`, so its wrapper replaces the
manager's request with a metered one. Either way the SDK's own `Stream` is metered in place, so its
helpers (`text_stream`, `get_final_message`, `until_done`) work unchanged. A fault in genai-meter's
part is recorded and the SDK is called as if uninstrumented; only `BudgetExceeded` reaches the app.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any, NamedTuple, cast

from ..._call import begin_call
from ..._faults import record_fault
from ..._runtime import get_runtime
from ...exporter._metered import remember_call_span
from .._metering import Metered, budget_estimate, capture_input, metered_call, metered_call_async
from .._streams import meter_async_stream, meter_stream
from .._values import RawResponses, content_chars, number, text
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
    )
    remember_call_span(call.span)
    capture_input(runtime, call, "anthropic", request.prompt)

    def finish(parsed: Any) -> Any:
        if request.stream:
            observer = MessageStreamObserver(call, request.prompt_chars)
            return (meter_async_stream if is_async else meter_stream)(parsed, observer)
        finish_message(call, parsed)
        return parsed

    def on_result(result: Any) -> Any:
        if not RAW_RESPONSES.is_raw(result):
            return finish(result)
        # A raw response: meter what it parses to (the SDK caches it, so the app's `parse()` gets it).
        parsed = cast(Any, result).parse()
        if inspect.isawaitable(parsed):
            return _then(parsed, finish, result)
        finish(parsed)
        return result

    return Metered(call, kwargs, on_result)


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


def _request_attribute(manager: Any) -> str | None:
    """The manager's private request attribute (`_MessageStreamManager__api_request`, ...)."""
    for name in vars(manager):
        if isinstance(name, str) and name.endswith("__api_request"):
            return name
    return None


def _metered_request(original: Callable[[], Any], instance: Any, kwargs: dict[str, Any]) -> Callable[[], Any]:
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


def stream_wrapper(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """`Messages.stream` / `AsyncMessages.stream`: meter the request the returned manager sends."""
    manager = wrapped(*args, **kwargs)
    try:
        name = _request_attribute(manager)
        if name is None:
            record_fault("anthropic.stream_manager", None)
            return manager
        original = getattr(manager, name)
        if inspect.iscoroutine(original):
            setattr(manager, name, _metered_async_request(original, instance, kwargs))
        else:
            setattr(manager, name, _metered_request(original, instance, kwargs))
    except Exception as fault:
        record_fault("anthropic.stream_manager", fault)
    return manager
