"""The wrappers placed around the Google Gen AI SDK's per-request methods.

`Models.generate_content` may send several requests for one call (automatic function calling, and
automatic continuation), each billed on its own; the SDK sends each through `_generate_content` /
`_generate_content_stream`, so those are wrapped and every request is metered as one call. Streams
are generators: the SDK's generator is handed out behind a small iterator object that genai-meter
meters in place, so every exit path (exhausted, break, close, exception, garbage collection) ends
the call once. A fault in genai-meter's part is recorded and the SDK called as if uninstrumented.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
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
from ._observers import GenerateStreamObserver, finish_response
from ._request import client_info, content_chars, max_output_tokens, model_name

OPERATION = "generate_content"


@dataclass(frozen=True, slots=True)
class Request:
    model: str
    stream: bool
    max_output_tokens: int | None
    prompt_chars: int


def _estimate(runtime: Runtime, provider: str, request: Request) -> Callable[[], float | None]:
    def estimate() -> float | None:
        pricing = runtime.prices.resolve(provider, request.model)
        if pricing is None or request.max_output_tokens is None:
            return None
        usage = Usage(input_tokens=estimate_tokens(request.prompt_chars), output_tokens=request.max_output_tokens)
        return pricing.cost(usage, time.time()).total_usd

    return estimate


def _begin(instance: Any, kwargs: dict[str, Any], stream: bool) -> tuple[Call, Request]:
    runtime = get_runtime()
    info = client_info(instance, runtime)
    contents = kwargs.get("contents")
    request = Request(
        model=model_name(kwargs.get("model")),
        stream=stream,
        max_output_tokens=max_output_tokens(kwargs.get("config")),
        prompt_chars=content_chars(contents),
    )
    call = begin_call(
        runtime,
        info.provider,
        OPERATION,
        request.model,
        info.server,
        stream,
        None,
        _estimate(runtime, info.provider, request) if runtime.guard is not None else None,
    )
    remember_call_span(call.span)
    if runtime.config.capture_content:
        try:
            call.span.set_attribute(names.INPUT_MESSAGES, json.dumps(contents, default=str))
        except Exception as fault:
            record_fault("google_genai.capture_content", fault)
    return call, request


def _is_budget_error(error: BaseException) -> bool:
    from ...budgets import BudgetExceeded

    return isinstance(error, BudgetExceeded)


class _Chunks:
    """The SDK's chunk generator behind an object genai-meter can meter in place (and finalize)."""

    __slots__ = ("__weakref__", "_iterator")

    def __init__(self, source: Iterator[Any]) -> None:
        self._iterator = source

    def __iter__(self) -> _Chunks:
        return self

    def __next__(self) -> Any:
        return next(self._iterator)

    def close(self) -> None:
        close = getattr(self._iterator, "close", None)
        if close is not None:
            close()


class _AsyncChunks:
    __slots__ = ("__weakref__", "_iterator")

    def __init__(self, source: AsyncIterator[Any]) -> None:
        self._iterator = source

    def __aiter__(self) -> _AsyncChunks:
        return self

    async def __anext__(self) -> Any:
        return await self._iterator.__anext__()

    async def aclose(self) -> None:
        aclose = getattr(self._iterator, "aclose", None)
        if aclose is not None:
            await aclose()


def sync_wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """`Models._generate_content`: one request, one response."""
    if not is_instrumentation_enabled():
        return wrapped(*args, **kwargs)
    try:
        call, _request = _begin(instance, kwargs, False)
    except Exception as error:
        if _is_budget_error(error):
            raise
        record_fault("google_genai.begin", error)
        return wrapped(*args, **kwargs)
    token = call.activate()
    try:
        response = wrapped(*args, **kwargs)
    except BaseException as error:
        call.finish(usage=None, error=error)
        raise
    finally:
        call.deactivate(token)
    try:
        finish_response(call, response)
    except Exception as fault:
        record_fault("google_genai.response", fault)
        call.finish(usage=None)
    return response


def sync_stream_wrapper(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """`Models._generate_content_stream`: a generator that sends the request when first read."""
    if not is_instrumentation_enabled():
        return wrapped(*args, **kwargs)
    try:
        call, request = _begin(instance, kwargs, True)
    except Exception as error:
        if _is_budget_error(error):
            raise
        record_fault("google_genai.begin", error)
        return wrapped(*args, **kwargs)
    try:
        source = wrapped(*args, **kwargs)
    except BaseException as error:
        call.finish(usage=None, error=error)
        raise
    try:
        return meter_stream(_Chunks(source), GenerateStreamObserver(call, request.prompt_chars))
    except Exception as fault:
        record_fault("google_genai.response", fault)
        call.finish(usage=None)
        return source


async def async_wrapper(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """`AsyncModels._generate_content`."""
    if not is_instrumentation_enabled():
        return await wrapped(*args, **kwargs)
    try:
        call, _request = _begin(instance, kwargs, False)
    except Exception as error:
        if _is_budget_error(error):
            raise
        record_fault("google_genai.begin", error)
        return await wrapped(*args, **kwargs)
    token = call.activate()
    try:
        response = await wrapped(*args, **kwargs)
    except BaseException as error:
        call.finish(usage=None, error=error)
        raise
    finally:
        call.deactivate(token)
    try:
        finish_response(call, response)
    except Exception as fault:
        record_fault("google_genai.response", fault)
        call.finish(usage=None)
    return response


async def async_stream_wrapper(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """`AsyncModels._generate_content_stream`: sends the request, returns an async generator of chunks."""
    if not is_instrumentation_enabled():
        return await wrapped(*args, **kwargs)
    try:
        call, request = _begin(instance, kwargs, True)
    except Exception as error:
        if _is_budget_error(error):
            raise
        record_fault("google_genai.begin", error)
        return await wrapped(*args, **kwargs)
    token = call.activate()
    try:
        source = await wrapped(*args, **kwargs)
    except BaseException as error:
        call.finish(usage=None, error=error)
        raise
    finally:
        call.deactivate(token)
    try:
        return meter_async_stream(_AsyncChunks(source), GenerateStreamObserver(call, request.prompt_chars))
    except Exception as fault:
        record_fault("google_genai.response", fault)
        call.finish(usage=None)
        return source
