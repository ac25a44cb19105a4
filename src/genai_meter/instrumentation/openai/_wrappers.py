"""The wrappers placed around the OpenAI SDK's billing methods.

One sync and one async wrapper serve every operation; an `Operation` says how to read that
operation's request and response. A fault anywhere in genai-meter's part is recorded and the SDK
is called as if uninstrumented; only `BudgetExceeded` reaches the app on purpose.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from ... import names
from ..._call import Call, begin_call
from ..._faults import record_fault
from ..._runtime import Runtime, get_runtime
from ..._usage import Usage, estimate_tokens
from .._streams import StreamObserver, meter_async_stream, meter_stream
from ._observers import (
    ChatStreamObserver,
    ResponsesStreamObserver,
    finish_chat,
    finish_embedding,
    finish_response,
)
from ._request import client_info, content_chars, number, text

_RAW_RESPONSE_TYPES: tuple[type[Any], ...] = ()


def set_raw_response_types(types: tuple[type, ...]) -> None:
    """The SDK's raw-response classes (`with_raw_response`, `with_streaming_response`)."""
    global _RAW_RESPONSE_TYPES
    _RAW_RESPONSE_TYPES = types


@dataclass(frozen=True, slots=True)
class Request:
    model: str
    stream: bool
    user: str | None
    max_output_tokens: int | None
    prompt: Any
    include_usage: bool


@dataclass(frozen=True)
class Operation:
    name: str
    prompt_key: str
    max_tokens_keys: tuple[str, ...]
    finish: Callable[[Call, Any], None]
    observer: Callable[[Call, bool, int], StreamObserver] | None
    injects_usage: bool = False


def _read_request(operation: Operation, kwargs: dict[str, Any]) -> Request:
    options = kwargs.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    max_output = None
    for key in operation.max_tokens_keys:
        max_output = number(kwargs.get(key))
        if max_output is not None:
            break
    return Request(
        model=text(kwargs.get("model")) or "unknown",
        stream=kwargs.get("stream") is True,
        user=text(kwargs.get("user")) or text(kwargs.get("safety_identifier")),
        max_output_tokens=max_output,
        prompt=kwargs.get(operation.prompt_key),
        include_usage=include_usage,
    )


def _estimate(runtime: Runtime, provider: str, request: Request) -> Callable[[], float | None]:
    """The budget reservation for a call: prompt and `max_tokens` at the model's prices."""

    def estimate() -> float | None:
        pricing = runtime.prices.resolve(provider, request.model)
        if pricing is None or request.max_output_tokens is None:
            return None
        usage = Usage(
            input_tokens=estimate_tokens(content_chars(request.prompt)),
            output_tokens=request.max_output_tokens,
        )
        return pricing.cost(usage, time.time()).total_usd

    return estimate


def _with_include_usage(kwargs: dict[str, Any]) -> dict[str, Any]:
    options = kwargs.get("stream_options")
    merged = {**options, "include_usage": True} if isinstance(options, dict) else {"include_usage": True}
    return {**kwargs, "stream_options": merged}


def _begin(
    operation: Operation, instance: Any, kwargs: dict[str, Any]
) -> tuple[Call, dict[str, Any], Request, bool]:
    runtime = get_runtime()
    info = client_info(instance, runtime)
    request = _read_request(operation, kwargs)
    inject = (
        request.stream and operation.injects_usage and info.inject_stream_usage and not request.include_usage
    )
    call = begin_call(
        runtime,
        info.provider,
        operation.name,
        request.model,
        info.server,
        request.stream,
        request.user,
        _estimate(runtime, info.provider, request) if runtime.guard is not None else None,
    )
    if runtime.config.capture_content and request.prompt is not None:
        try:
            call.span.set_attribute(names.INPUT_MESSAGES, json.dumps(request.prompt, default=str))
        except Exception as fault:
            record_fault("openai.capture_content", fault)
    return call, (_with_include_usage(kwargs) if inject else kwargs), request, inject


def _is_budget_error(error: BaseException) -> bool:
    from ...budgets import BudgetExceeded

    return isinstance(error, BudgetExceeded)


def _observer(operation: Operation, call: Call, request: Request, inject: bool) -> StreamObserver:
    assert operation.observer is not None
    return operation.observer(call, inject, content_chars(request.prompt))


def _parse_raw(result: Any) -> Any:
    """The parsed object behind a raw response (`with_raw_response`); the SDK caches it, so the
    app's own `.parse()` later gets the same (metered) object."""
    return result.parse() if isinstance(result, _RAW_RESPONSE_TYPES) else result


def sync_wrapper(operation: Operation) -> Callable[..., Any]:
    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if not is_instrumentation_enabled():
            return wrapped(*args, **kwargs)
        try:
            call, send_kwargs, request, inject = _begin(operation, instance, kwargs)
        except Exception as error:
            if _is_budget_error(error):
                raise
            record_fault("openai.begin", error)
            return wrapped(*args, **kwargs)
        token = call.activate()
        try:
            result = wrapped(*args, **send_kwargs)
        except BaseException as error:
            call.finish(usage=None, error=error)
            raise
        finally:
            call.deactivate(token)
        try:
            if request.stream and operation.observer is not None:
                stream = _parse_raw(result)
                meter_stream(stream, _observer(operation, call, request, inject))
            else:
                parsed = _parse_raw(result)
                operation.finish(call, parsed)
        except Exception as fault:
            record_fault("openai.response", fault)
            call.finish(usage=None)
        return result

    return wrapper


def async_wrapper(operation: Operation) -> Callable[..., Any]:
    async def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if not is_instrumentation_enabled():
            return await wrapped(*args, **kwargs)
        try:
            call, send_kwargs, request, inject = _begin(operation, instance, kwargs)
        except Exception as error:
            if _is_budget_error(error):
                raise
            record_fault("openai.begin", error)
            return await wrapped(*args, **kwargs)
        token = call.activate()
        try:
            result = await wrapped(*args, **send_kwargs)
        except BaseException as error:
            call.finish(usage=None, error=error)
            raise
        finally:
            call.deactivate(token)
        try:
            parsed = _parse_raw(result)
            if inspect.isawaitable(parsed) and isinstance(result, _RAW_RESPONSE_TYPES):
                parsed = await parsed
            if request.stream and operation.observer is not None:
                meter_async_stream(parsed, _observer(operation, call, request, inject))
            else:
                operation.finish(call, parsed)
        except Exception as fault:
            record_fault("openai.response", fault)
            call.finish(usage=None)
        return result

    return wrapper


CHAT = Operation(
    name="chat",
    prompt_key="messages",
    max_tokens_keys=("max_completion_tokens", "max_tokens"),
    finish=finish_chat,
    observer=lambda call, inject, chars: ChatStreamObserver(call, inject, chars),
    injects_usage=True,
)
TEXT_COMPLETION = Operation(
    name="text_completion",
    prompt_key="prompt",
    max_tokens_keys=("max_tokens",),
    finish=finish_chat,
    observer=lambda call, inject, chars: ChatStreamObserver(call, inject, chars),
    injects_usage=True,
)
RESPONSES = Operation(
    name="chat",
    prompt_key="input",
    max_tokens_keys=("max_output_tokens",),
    finish=finish_response,
    observer=lambda call, inject, chars: ResponsesStreamObserver(call, chars),
)
EMBEDDINGS = Operation(
    name="embeddings",
    prompt_key="input",
    max_tokens_keys=(),
    finish=finish_embedding,
    observer=None,
)
