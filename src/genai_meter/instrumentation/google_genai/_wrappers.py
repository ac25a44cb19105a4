"""The wrappers placed around the Google Gen AI SDK's per-request methods.

`Models.generate_content` may send several requests for one call (automatic function calling, and
automatic continuation), each billed on its own; the SDK sends each through `_generate_content` /
`_generate_content_stream`, so those are wrapped and every request is metered as one call. Streams
are generators: the SDK's generator is read through genai-meter's metering generator, handed to the
SDK's public method in its place, so every exit path (exhausted, break, close, exception, garbage
collection) ends the call once. A fault in genai-meter's part is recorded and the SDK called as if uninstrumented.

The synchronous stream generator sends its request on its first read. That read is made in the
wrapper, with the call's span current (so the HTTP request nests under it, and a refused request is
an error of the call, not of a stream that began), and the chunk it returns is handed out first.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from ..._call import Call, begin_call
from ..._runtime import get_runtime
from ...exporter._metered import remember_call_span
from .._metering import Metered, budget_estimate, capture_input, metered_call, metered_call_async
from .._streams import metered_async_items, metered_items
from .._values import content_chars
from ._observers import GenerateStreamObserver, finish_embeddings, finish_response
from ._request import client_info, max_output_tokens, model_name

OPERATION = "generate_content"
EMBEDDINGS = "embeddings"


class Request(NamedTuple):
    model: str
    stream: bool
    max_output_tokens: int | None
    contents: Any

    def prompt_chars(self) -> int:
        return content_chars(self.contents)


def _started(instance: Any, operation: str, request: Request) -> Call:
    """The metered call of one request (what generation and embeddings share)."""
    runtime = get_runtime()
    info = client_info(instance, runtime)
    call = begin_call(
        runtime,
        info.provider,
        operation,
        request.model,
        info.server,
        request.stream,
        None,
        budget_estimate(runtime, info.provider, request.model, request.prompt_chars, request.max_output_tokens),
        prompt_chars=request.prompt_chars,
    )
    remember_call_span(call.span)
    capture_input(runtime, call, "google_genai", lambda: request.contents)
    return call


def _begin_embeddings(instance: Any, kwargs: dict[str, Any]) -> Metered:
    """`_embed_content`: one request of `embed_content` (its contents under one of three keys, by API)."""
    contents = next((kwargs[key] for key in ("contents", "content", "batch_contents") if key in kwargs), None)
    call = _started(instance, EMBEDDINGS, Request(model_name(kwargs.get("model")), False, 0, contents))

    def on_result(result: Any) -> Any:
        finish_embeddings(call, result)
        return result

    return Metered(call, kwargs, on_result)


def embed_wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """`Models._embed_content`: one request, one response."""
    return metered_call(
        "google_genai", lambda kw: wrapped(*args, **kw), kwargs, lambda kw: _begin_embeddings(instance, kw)
    )


async def async_embed_wrapper(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """`AsyncModels._embed_content`."""
    return await metered_call_async(
        "google_genai", lambda kw: wrapped(*args, **kw), kwargs, lambda kw: _begin_embeddings(instance, kw)
    )


def _begin(instance: Any, kwargs: dict[str, Any], stream: bool, is_async: bool) -> Metered:
    request = Request(
        model=model_name(kwargs.get("model")),
        stream=stream,
        max_output_tokens=max_output_tokens(kwargs.get("config")),
        contents=kwargs.get("contents"),
    )
    call = _started(instance, OPERATION, request)

    def on_result(result: Any) -> Any:
        if not stream:
            finish_response(call, result)
            return result
        observer = GenerateStreamObserver(call, request.prompt_chars)
        if is_async:
            return metered_async_items(result, observer)
        return metered_items(result, observer)

    return Metered(call, kwargs, on_result)


def sync_wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """`Models._generate_content`: one request, one response."""
    return metered_call(
        "google_genai", lambda kw: wrapped(*args, **kw), kwargs, lambda kw: _begin(instance, kw, False, False)
    )


def _sent(chunks: Iterator[Any]) -> Iterator[Any]:
    """The SDK's chunk generator read up to its first chunk, which sends the request (now, while the
    caller has the call's span current: no context is held across a `yield`), then all its chunks."""
    try:
        first = next(chunks)
    except StopIteration:
        return iter(())
    return itertools.chain((first,), chunks)


def sync_stream_wrapper(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """`Models._generate_content_stream`: a generator that sends the request when first read."""
    return metered_call(
        "google_genai", lambda kw: _sent(wrapped(*args, **kw)), kwargs, lambda kw: _begin(instance, kw, True, False)
    )


async def async_wrapper(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """`AsyncModels._generate_content`."""
    return await metered_call_async(
        "google_genai", lambda kw: wrapped(*args, **kw), kwargs, lambda kw: _begin(instance, kw, False, True)
    )


async def async_stream_wrapper(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """`AsyncModels._generate_content_stream`: sends the request, returns an async generator of chunks."""
    return await metered_call_async(
        "google_genai", lambda kw: wrapped(*args, **kw), kwargs, lambda kw: _begin(instance, kw, True, True)
    )
