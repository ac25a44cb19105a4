"""The wrappers placed around the Anthropic SDK's billing methods.

`messages.create` / `.parse` (and their beta twins) send the request when called; the
`messages.stream` helper returns a manager that sends it on `__enter__`, so its wrapper replaces the
manager's request with a metered one. Either way the SDK's own `Stream` is metered in place, so its
helpers (`text_stream`, `get_final_message`, `until_done`) work unchanged. A fault in genai-meter's
part is recorded and the SDK is called as if uninstrumented; only `BudgetExceeded` reaches the app.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from ... import names
from ..._call import Call, begin_call
from ..._faults import record_fault
from ..._runtime import Runtime, get_runtime
from ..._usage import Usage, estimate_tokens
from ...exporter._metered import remember_call_span
from .._streams import meter_async_stream, meter_stream
from ._observers import MessageStreamObserver, finish_message
from ._request import client_info, content_chars, metadata_user, number, text

OPERATION = "chat"
_RAW_RESPONSE_TYPES: tuple[type, ...] = ()


def set_raw_response_types(types: tuple[type, ...]) -> None:
    """The SDK's raw-response classes (`with_raw_response`, `with_streaming_response`)."""
    global _RAW_RESPONSE_TYPES
    _RAW_RESPONSE_TYPES = types


@dataclass(frozen=True, slots=True)
class Request:
    model: str
    stream: bool
    user: str | None
    max_tokens: int | None
    prompt_chars: int


def _read_request(kwargs: dict[str, Any], stream: bool) -> Request:
    return Request(
        model=text(kwargs.get("model")) or "unknown",
        stream=stream,
        user=metadata_user(kwargs.get("metadata")),
        max_tokens=number(kwargs.get("max_tokens")),
        prompt_chars=content_chars(kwargs.get("system")) + content_chars(kwargs.get("messages")),
    )


def _estimate(runtime: Runtime, provider: str, request: Request) -> Callable[[], float | None]:
    """The budget reservation for a call: prompt and `max_tokens` at the model's prices."""

    def estimate() -> float | None:
        pricing = runtime.prices.resolve(provider, request.model)
        if pricing is None or request.max_tokens is None:
            return None
        usage = Usage(input_tokens=estimate_tokens(request.prompt_chars), output_tokens=request.max_tokens)
        return pricing.cost(usage, time.time()).total_usd

    return estimate


def _begin(instance: Any, kwargs: dict[str, Any], stream: bool) -> tuple[Call, Request]:
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
        _estimate(runtime, info.provider, request) if runtime.guard is not None else None,
    )
    remember_call_span(call.span)
    if runtime.config.capture_content:
        try:
            prompt = {"system": kwargs.get("system"), "messages": kwargs.get("messages")}
            call.span.set_attribute(names.INPUT_MESSAGES, json.dumps(prompt, default=str))
        except Exception as fault:
            record_fault("anthropic.capture_content", fault)
    return call, request


def _is_budget_error(error: BaseException) -> bool:
    from ...budgets import BudgetExceeded

    return isinstance(error, BudgetExceeded)


def _parse_raw(raw: Any) -> Any:
    """The SDK object behind a raw response (the SDK caches it, so the app's own `parse()` gets the same)."""
    return raw.parse()


def _finish(call: Call, request: Request, parsed: Any, is_async: bool) -> None:
    if request.stream:
        observer = MessageStreamObserver(call, request.prompt_chars)
        if is_async:
            meter_async_stream(parsed, observer)
        else:
            meter_stream(parsed, observer)
    else:
        finish_message(call, parsed)


def sync_wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """`Messages.create` / `.parse` (sync)."""
    if not is_instrumentation_enabled():
        return wrapped(*args, **kwargs)
    try:
        call, request = _begin(instance, kwargs, kwargs.get("stream") is True)
    except Exception as error:
        if _is_budget_error(error):
            raise
        record_fault("anthropic.begin", error)
        return wrapped(*args, **kwargs)
    token = call.activate()
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as error:
        call.finish(usage=None, error=error)
        raise
    finally:
        call.deactivate(token)
    try:
        parsed: Any = result
        if isinstance(parsed, _RAW_RESPONSE_TYPES):
            parsed = _parse_raw(parsed)
        _finish(call, request, parsed, is_async=False)
    except Exception as fault:
        record_fault("anthropic.response", fault)
        call.finish(usage=None)
    return result


async def async_wrapper(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """`AsyncMessages.create` / `.parse`."""
    if not is_instrumentation_enabled():
        return await wrapped(*args, **kwargs)
    try:
        call, request = _begin(instance, kwargs, kwargs.get("stream") is True)
    except Exception as error:
        if _is_budget_error(error):
            raise
        record_fault("anthropic.begin", error)
        return await wrapped(*args, **kwargs)
    token = call.activate()
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as error:
        call.finish(usage=None, error=error)
        raise
    finally:
        call.deactivate(token)
    try:
        parsed: Any = result
        if isinstance(parsed, _RAW_RESPONSE_TYPES):
            parsed = _parse_raw(parsed)
            if inspect.isawaitable(parsed):
                parsed = await parsed
        _finish(call, request, parsed, is_async=True)
    except Exception as fault:
        record_fault("anthropic.response", fault)
        call.finish(usage=None)
    return result


def _request_attribute(manager: Any) -> str | None:
    """The manager's private request attribute (`_MessageStreamManager__api_request`, ...)."""
    for name in vars(manager):
        if isinstance(name, str) and name.endswith("__api_request"):
            return name
    return None


def _metered_request(original: Callable[[], Any], instance: Any, kwargs: dict[str, Any]) -> Callable[[], Any]:
    def request() -> Any:
        if not is_instrumentation_enabled():
            return original()
        try:
            call, parsed_request = _begin(instance, kwargs, True)
        except Exception as error:
            if _is_budget_error(error):
                raise
            record_fault("anthropic.begin", error)
            return original()
        token = call.activate()
        try:
            raw_stream = original()
        except BaseException as error:
            call.finish(usage=None, error=error)
            raise
        finally:
            call.deactivate(token)
        return meter_stream(raw_stream, MessageStreamObserver(call, parsed_request.prompt_chars))

    return request


async def _metered_async_request(original: Coroutine[Any, Any, Any], instance: Any, kwargs: dict[str, Any]) -> Any:
    if not is_instrumentation_enabled():
        return await original
    try:
        call, parsed_request = _begin(instance, kwargs, True)
    except Exception as error:
        if _is_budget_error(error):
            original.close()
            raise
        record_fault("anthropic.begin", error)
        return await original
    token = call.activate()
    try:
        raw_stream = await original
    except BaseException as error:
        call.finish(usage=None, error=error)
        raise
    finally:
        call.deactivate(token)
    return meter_async_stream(raw_stream, MessageStreamObserver(call, parsed_request.prompt_chars))


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
