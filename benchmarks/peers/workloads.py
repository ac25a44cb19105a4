"""The calls every contestant makes: real OpenAI / Anthropic SDK clients on an in-process transport.

No sockets: an `httpx.MockTransport` (or `httpx2` for SDK majors that moved to it) answers with
canned bodies, so what differs between contestants is the instrumentation alone. The usage figures
are fixed so what each contestant records can be checked against known numbers.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-sonnet-4-5-20250929"
STREAM_CHUNKS = 20
INPUT_TOKENS = 1200
OUTPUT_TOKENS = 300
CACHE_READ_TOKENS = 256
USER, TENANT, FEATURE = "user-42", "acme-corp", "support-bot"

_OPENAI_USAGE = {
    "prompt_tokens": INPUT_TOKENS,
    "completion_tokens": OUTPUT_TOKENS,
    "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS,
    "prompt_tokens_details": {"cached_tokens": CACHE_READ_TOKENS},
    "completion_tokens_details": {"reasoning_tokens": 0},
}
_OPENAI_COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1,
        "model": f"{OPENAI_MODEL}-2024-07-18",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hello"}}],
        "usage": _OPENAI_USAGE,
    }
).encode()


def _sse(events: list[tuple[str | None, dict[str, Any] | str]]) -> bytes:
    out = []
    for name, data in events:
        payload = data if isinstance(data, str) else json.dumps(data)
        out.append((f"event: {name}\n" if name else "") + f"data: {payload}\n\n")
    return "".join(out).encode()


def _openai_stream(include_usage: bool) -> bytes:
    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": f"{OPENAI_MODEL}-2024-07-18",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    events: list[tuple[str | None, dict[str, Any] | str]] = []
    for i in range(STREAM_CHUNKS - 1):
        delta: dict[str, Any] = {"content": f"tok{i} "}
        if i == 0:
            delta["role"] = "assistant"
        events.append((None, chunk(delta, None)))
    events.append((None, chunk({}, "stop")))
    if include_usage:
        usage_chunk = chunk({}, None)
        usage_chunk["choices"] = []
        usage_chunk["usage"] = _OPENAI_USAGE
        events.append((None, usage_chunk))
    events.append((None, "[DONE]"))
    return _sse(events)


_OPENAI_STREAM_WITH_USAGE = _openai_stream(True)
_OPENAI_STREAM_BARE = _openai_stream(False)

_ANTHROPIC_USAGE = {
    "input_tokens": INPUT_TOKENS,
    "output_tokens": OUTPUT_TOKENS,
    "cache_read_input_tokens": CACHE_READ_TOKENS,
    "cache_creation_input_tokens": 0,
}
_ANTHROPIC_MESSAGE = json.dumps(
    {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": ANTHROPIC_MODEL,
        "content": [{"type": "text", "text": "hello"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": _ANTHROPIC_USAGE,
    }
).encode()


def _anthropic_stream() -> bytes:
    start_usage = dict(_ANTHROPIC_USAGE, output_tokens=1)
    message = {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": ANTHROPIC_MODEL,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": start_usage,
    }
    events: list[tuple[str | None, dict[str, Any] | str]] = [
        ("message_start", {"type": "message_start", "message": message}),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
    ]
    # 20 chunks in all, as for OpenAI: 18 text deltas plus the two framing events around them.
    for i in range(STREAM_CHUNKS - 2):
        delta = {"type": "text_delta", "text": f"tok{i} "}
        events.append(("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}))
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": OUTPUT_TOKENS},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return _sse(events)


_ANTHROPIC_STREAM = _anthropic_stream()


def _http_module(sdk_name: str) -> Any:
    """The HTTP library the installed SDK major uses (openai 3.x / anthropic 2.x moved to `httpx2`)."""
    sdk = importlib.import_module(sdk_name)
    major = int(sdk.__version__.split(".")[0])
    uses_httpx2 = (sdk_name == "openai" and major >= 3) or (sdk_name == "anthropic" and major >= 2)
    return importlib.import_module("httpx2" if uses_httpx2 else "httpx")


def openai_client() -> Any:
    import openai

    http = _http_module("openai")

    def handler(request: Any) -> Any:
        body = json.loads(request.content)
        if body.get("stream"):
            include = bool((body.get("stream_options") or {}).get("include_usage"))
            content = _OPENAI_STREAM_WITH_USAGE if include else _OPENAI_STREAM_BARE
            return http.Response(200, content=content, headers={"content-type": "text/event-stream"})
        return http.Response(200, content=_OPENAI_COMPLETION, headers={"content-type": "application/json"})

    return openai.OpenAI(
        api_key="sk-bench",
        base_url="https://api.openai.com/v1",
        max_retries=0,
        http_client=http.Client(transport=http.MockTransport(handler)),
    )


def anthropic_client() -> Any:
    import anthropic

    http = _http_module("anthropic")

    def handler(request: Any) -> Any:
        if json.loads(request.content).get("stream"):
            return http.Response(200, content=_ANTHROPIC_STREAM, headers={"content-type": "text/event-stream"})
        return http.Response(200, content=_ANTHROPIC_MESSAGE, headers={"content-type": "application/json"})

    return anthropic.Anthropic(
        api_key="sk-ant-bench",
        base_url="https://api.anthropic.com",
        max_retries=0,
        http_client=http.Client(transport=http.MockTransport(handler)),
    )


_MESSAGES: Any = [{"role": "user", "content": "hello"}]
Scope = Callable[[], AbstractContextManager[Any]]


def _no_scope() -> AbstractContextManager[Any]:
    return nullcontext()


def workloads(scope: Scope = _no_scope) -> dict[str, tuple[Callable[[], Any], Callable[[Any], None]]]:
    """name -> (client factory, one call). `scope` wraps each call (genai-meter's attribution);
    every contestant passes the end user the way the SDK allows (`user`, `metadata.user_id`)."""

    def openai_call(client: Any) -> None:
        with scope():
            client.chat.completions.create(model=OPENAI_MODEL, messages=_MESSAGES, user=USER)

    def openai_stream(client: Any) -> None:
        with scope():
            for _chunk in client.chat.completions.create(
                model=OPENAI_MODEL, messages=_MESSAGES, user=USER, stream=True
            ):
                pass

    def anthropic_call(client: Any) -> None:
        with scope():
            client.messages.create(
                model=ANTHROPIC_MODEL, max_tokens=1024, messages=_MESSAGES, metadata={"user_id": USER}
            )

    def anthropic_stream(client: Any) -> None:
        with scope():
            events: Iterator[Any] = client.messages.create(
                model=ANTHROPIC_MODEL, max_tokens=1024, messages=_MESSAGES, metadata={"user_id": USER}, stream=True
            )
            for _event in events:
                pass

    return {
        "openai.call": (openai_client, openai_call),
        "openai.stream": (openai_client, openai_stream),
        "anthropic.call": (anthropic_client, anthropic_call),
        "anthropic.stream": (anthropic_client, anthropic_stream),
    }
