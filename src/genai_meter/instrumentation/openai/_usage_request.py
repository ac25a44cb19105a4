"""Asking an OpenAI stream for its usage by adding `stream_options` to the request body the SDK
built, instead of handing the SDK an `extra_body`.

The SDK merges an `extra_body` into the body through its typed checks (`is_mapping`, whose
`isinstance` against `typing.Mapping` goes through the ABC machinery, and two dict rebuilds):
~40,000 CPU instructions per stream, measured, where one key added to the dict the SDK has just
built costs ~3,000. So genai-meter wraps the SDK clients' `post` (every request's way out): a call
that asks for usage marks the context it sends from, and the `post` made in that context adds the
key. The mark is made and taken off around the SDK call itself, so no other request sees it.

Where the clients' `post` could not be wrapped (an SDK that has none), `extra_body` is used as before.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from .._patching import patch, unpatch

_BASE_CLIENT_MODULE = "openai._base_client"
_CLIENT_CLASSES = ("SyncAPIClient", "AsyncAPIClient")

_ASKING: ContextVar[bool] = ContextVar("genai_meter_openai_stream_usage", default=False)


class Patched:
    """Whether the clients' `post` carries `add_stream_usage` (read per call)."""

    on = False


def instrument() -> None:
    Patched.on = all([patch(_BASE_CLIENT_MODULE, name, "post", add_stream_usage) for name in _CLIENT_CLASSES])
    if not Patched.on:
        uninstrument()


def uninstrument() -> None:
    Patched.on = False
    for name in _CLIENT_CLASSES:
        unpatch(_BASE_CLIENT_MODULE, name, "post")


def add_stream_usage(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The SDK clients' `post`: a streamed request sent in a context that asks for usage gets
    `stream_options.include_usage` in its JSON body (which has no `stream_options` then: a caller
    who set them gets `include_usage` added to them by the argument, see `_wrappers`)."""
    if _ASKING.get() and kwargs.get("stream") is True:
        body = kwargs.get("body")
        if type(body) is dict and "stream_options" not in body:
            kwargs["body"] = {**body, "stream_options": {"include_usage": True}}
    return wrapped(*args, **kwargs)


def send_asking(send: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """`send(*args, **kwargs)` (the SDK call) in a context that asks for stream usage."""
    token = _ASKING.set(True)
    try:
        return send(*args, **kwargs)
    finally:
        _ASKING.reset(token)


async def send_asking_async(send: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """`send_asking` for the async SDK call: the mark is the awaiting task's own."""
    token = _ASKING.set(True)
    try:
        return await send(*args, **kwargs)
    finally:
        _ASKING.reset(token)
