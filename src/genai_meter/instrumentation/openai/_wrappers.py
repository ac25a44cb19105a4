"""The wrappers placed around the OpenAI SDK's billing methods.

One sync and one async wrapper serve every operation; an `Operation` says how to read that
operation's request and response, and `_metering` runs the call the same way for every provider.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from ... import names
from ..._call import Call, begin_call
from ..._runtime import get_runtime
from .._metering import Metered, budget_estimate, capture_input, metered_call, metered_call_async, new_metered
from .._sse_bytes import EventItemMeter, meter_response_bytes, meter_stream_bytes
from .._streams import StreamObserver, meter_async_stream, meter_stream
from .._values import RawResponses, content_chars, finish_received, number, text
from . import _usage_request
from ._events import CHAT_TEXT_KEYS, COMPLETION_TEXT_KEYS, ChatEventMeter
from ._observers import (
    ChatStreamObserver,
    ImagesStreamObserver,
    ResponsesStreamObserver,
    finish_chat,
    finish_embedding,
    finish_images,
    finish_response,
)
from ._request import client_info

RAW_RESPONSES = RawResponses("openai")


class Request(NamedTuple):
    model: str
    stream: bool
    user: str | None
    max_output_tokens: int | None
    prompt: Any
    include_usage: bool
    single_choice: bool  # (`n` 1 or unset: one choice streamed)

    def prompt_chars(self) -> int:
        return content_chars(self.prompt)


_new_request: Callable[[tuple[Any, ...]], Request] = functools.partial(tuple.__new__, Request)


@dataclass(frozen=True)
class Operation:
    name: str
    prompt_key: str
    max_tokens_keys: tuple[str, ...]
    # ends the call with a whole response, and the SDK's error when it raised after receiving it
    finish: Callable[[Call, Any, BaseException | None], None]
    observer: Callable[[Call, bool, Callable[[], int]], StreamObserver] | None
    response_classes: tuple[str, ...]  # the SDK's classes of a whole response ("module.Name")
    injects_usage: bool = False
    raw_events: bool = False  # Chat Completions-shaped streams: metered from their raw events
    text_keys: tuple[bytes, ...] = CHAT_TEXT_KEYS  # the stream fields whose text is output

    @functools.cached_property
    def on_error(self) -> Callable[[Call, BaseException], None]:
        """Its `Metered.on_error`, made once: a response the SDK received before raising is finished."""
        return finish_received(self.response_classes, self.finish)


def _include_usage(kwargs: dict[str, Any]) -> bool:
    """Whether the caller asked for stream usage itself (as an argument or through `extra_body`)."""
    options = kwargs.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage") is True:
        return True
    extra = kwargs.get("extra_body")
    if extra is None:  # (the usual call)
        return False
    options = extra.get("stream_options") if isinstance(extra, dict) else None
    return isinstance(options, dict) and options.get("include_usage") is True


def _read_request(operation: Operation, kwargs: dict[str, Any]) -> Request:
    stream = kwargs.get("stream") is True
    max_output = None
    for key in operation.max_tokens_keys:
        value = kwargs.get(key)
        if value is not None and (max_output := number(value)) is not None:
            break
    model = kwargs.get("model")
    user = kwargs.get("user")
    # (`text` of each, its usual case tested in place; a `Request` made without a keyword call)
    return _new_request(
        (
            model if type(model) is str and model else text(model) or "unknown",
            stream,
            user if type(user) is str and user else text(user) or text(kwargs.get("safety_identifier")),
            max_output,
            kwargs.get(operation.prompt_key),
            _include_usage(kwargs) if stream else False,
            stream and _single_choice(kwargs),
        )
    )


def _single_choice(kwargs: dict[str, Any]) -> bool:
    """Whether the request asks for one choice: `n` unset or 1, as an argument and in `extra_body`."""
    if kwargs.get("n") not in (None, 1):
        return False
    extra = kwargs.get("extra_body")
    return extra is None or not isinstance(extra, dict) or extra.get("n") in (None, 1)


def _with_include_usage(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Ask for stream usage. Where the caller set no `stream_options`, not through the argument,
    which goes through the SDK's typed transformation (~180,000 CPU instructions a call): added to
    the body the SDK built (`_usage_request`), else through `extra_body`, which the SDK adds to it
    as it is."""
    options = kwargs.get("stream_options")
    if isinstance(options, dict):
        return {**kwargs, "stream_options": {**options, "include_usage": True}}
    extra = kwargs.get("extra_body")
    if extra is None:  # (the usual call: neither given)
        if _usage_request.Patched.on:  # added to the body the SDK builds (see `_usage_request`)
            return _AskingUsage(kwargs)
        return {**kwargs, "extra_body": {"stream_options": {"include_usage": True}}}
    extra = dict(extra) if isinstance(extra, dict) else {}
    extra_options = extra.get("stream_options")
    extra["stream_options"] = (
        {**extra_options, "include_usage": True} if isinstance(extra_options, dict) else {"include_usage": True}
    )
    return {**kwargs, "extra_body": extra}


def _begin(operation: Operation, is_async: bool, instance: Any, kwargs: dict[str, Any]) -> Metered:
    runtime = get_runtime()
    info = client_info(instance, runtime)
    request = _read_request(operation, kwargs)
    inject = request.stream and operation.injects_usage and info.inject_stream_usage and not request.include_usage
    prompt_chars = request.prompt_chars  # called only for an estimate
    call = begin_call(
        runtime,
        info.provider,
        operation.name,
        request.model,
        info.server,
        request.stream,
        request.user,
        budget_estimate(runtime, info.provider, request.model, prompt_chars, request.max_output_tokens),
        prompt_chars=prompt_chars,
    )
    call.service_tier_key = names.OPENAI_RESPONSE_SERVICE_TIER
    if runtime.config.capture_content:  # (`capture_input` checks it too; tested here, no closure is made)
        capture_input(runtime, call, "openai", lambda: request.prompt)
    # `functools.partial` (made in C) binds the call to `_on_result`: the closures it replaces cost
    # ~30 opcodes a call to make.
    on_result = functools.partial(_on_result, operation, is_async, call, request, inject)
    return new_metered((call, _with_include_usage(kwargs) if inject else kwargs, on_result, operation.on_error))


def _on_result(operation: Operation, is_async: bool, call: Call, request: Request, inject: bool, result: Any) -> Any:
    """`Metered.on_result`: meter the stream in place, or end the call with the whole response."""
    # (a raw response is parsed; any other result, the usual one, is itself: no call made for it)
    parsed = RAW_RESPONSES.parsed(result) if isinstance(result, RAW_RESPONSES.types) else result
    if is_async and inspect.isawaitable(parsed):
        return _finish_async(operation, call, request, inject, result, parsed)
    _finish(operation, is_async, call, request, inject, parsed, parsed is not result)
    return result


async def _finish_async(
    operation: Operation, call: Call, request: Request, inject: bool, result: Any, parsed: Any
) -> Any:
    _finish(operation, True, call, request, inject, await parsed, True)
    return result


def _finish(
    operation: Operation, is_async: bool, call: Call, request: Request, inject: bool, parsed: Any, raw: bool
) -> None:
    if request.stream and operation.observer is not None:
        prompt_chars = request.prompt_chars
        if operation.raw_events:
            expected = inject or request.include_usage
            meter = ChatEventMeter(call, inject, prompt_chars, operation.text_keys, expected, request.single_choice)
            if (not raw and meter_stream_bytes(parsed, meter, is_async)) or meter_response_bytes(
                parsed, meter, is_async
            ):
                return
        observer = operation.observer(call, inject, prompt_chars)
        # a raw response's app may read its lines, never the SDK's stream: metered from the bytes
        if raw and meter_response_bytes(parsed, EventItemMeter(observer), is_async):
            return
        (meter_async_stream if is_async else meter_stream)(parsed, observer)
    else:
        operation.finish(call, parsed, None)


class _AskingUsage(dict[str, Any]):
    """The call's keyword arguments, unchanged, sent in a context that asks for stream usage."""


def _send(
    asking: Callable[..., Any], wrapped: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """The SDK call (a coroutine for the async SDK), through `asking` (`_usage_request.send_asking`
    or its async twin) when the metered call asks for stream usage."""
    if type(kwargs) is _AskingUsage:
        return asking(wrapped, args, kwargs)
    return wrapped(*args, **kwargs)


def sync_wrapper(operation: Operation) -> Callable[..., Any]:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        # (partials, made in C: a lambda costs its own frame when called)
        begin = functools.partial(_begin, operation, False, instance)
        send = functools.partial(_send, _usage_request.send_asking, wrapped, args)
        return metered_call("openai", send, kwargs, begin)

    return wrapper


def async_wrapper(operation: Operation) -> Callable[..., Any]:
    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        begin = functools.partial(_begin, operation, True, instance)
        send = functools.partial(_send, _usage_request.send_asking_async, wrapped, args)
        return await metered_call_async("openai", send, kwargs, begin)

    return wrapper


CHAT = Operation(
    name="chat",
    prompt_key="messages",
    max_tokens_keys=("max_completion_tokens", "max_tokens"),
    finish=finish_chat,
    observer=lambda call, inject, chars: ChatStreamObserver(call, inject, chars),
    response_classes=("openai.types.chat.ChatCompletion",),
    injects_usage=True,
    raw_events=True,
)
TEXT_COMPLETION = Operation(
    name="text_completion",
    prompt_key="prompt",
    max_tokens_keys=("max_tokens",),
    finish=finish_chat,
    observer=lambda call, inject, chars: ChatStreamObserver(call, inject, chars),
    response_classes=("openai.types.Completion",),
    injects_usage=True,
    raw_events=True,
    text_keys=COMPLETION_TEXT_KEYS,
)
RESPONSES = Operation(
    name="chat",
    prompt_key="input",
    max_tokens_keys=("max_output_tokens",),
    finish=finish_response,
    observer=lambda call, inject, chars: ResponsesStreamObserver(call, chars),
    response_classes=("openai.types.responses.Response",),
)
IMAGES = Operation(
    name="generate_image",
    prompt_key="prompt",
    max_tokens_keys=(),
    finish=finish_images,
    observer=lambda call, inject, chars: ImagesStreamObserver(call),
    response_classes=("openai.types.ImagesResponse",),
)
EMBEDDINGS = Operation(
    name="embeddings",
    prompt_key="input",
    max_tokens_keys=(),
    finish=finish_embedding,
    observer=None,
    response_classes=("openai.types.CreateEmbeddingResponse",),
)
