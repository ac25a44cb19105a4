"""OpenAI wire dialect: chat completions, Responses, embeddings and legacy completions.

Shapes follow what the `openai` SDK's models and stream helpers read (checked against openai 3.x):
chat streams put `"usage": null` on every chunk and add a `choices: []` usage chunk only when
`stream_options.include_usage` is true; Responses streams carry `event:` lines plus a `type` and a
`sequence_number` in every payload and end with `response.completed` holding the full response.
Chat answers `n` choices when asked, and every answer says the `service_tier` it was served at (the
one asked for; `default` for none or `auto`), as OpenAI's do. `x-fake-finish-reason`, `x-fake-fields`
and `x-fake-no-usage` (usage null or left out of a whole response) shape the answers for tests.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

from ._content import answer_pieces, fill_total, prompt_tokens
from ._controls import Controls, shaped, strip_usage
from ._wire import Frame, Served, StreamPlan, UsageRecord, new_id, sse

_GARBAGE = "{this is not json"


def error_body(status: int, message: str) -> dict[str, Any]:
    kind, code = {
        400: ("invalid_request_error", None),
        401: ("invalid_request_error", "invalid_api_key"),
        404: ("invalid_request_error", "not_found"),
        429: ("requests", "rate_limit_exceeded"),
    }.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _with_cost(usage: dict[str, Any], controls: Controls) -> dict[str, Any]:
    if controls.cost is not None:
        usage = {**usage, "cost": controls.cost}
    return usage


def _whole(body: dict[str, Any], controls: Controls) -> dict[str, Any]:
    """A whole (non-streamed) response body as the controls shape it."""
    return shaped(strip_usage(body, "usage", controls), controls)


def _service_tier(body: dict[str, Any]) -> str:
    tier = body.get("service_tier")
    return "default" if tier in (None, "auto") else str(tier)


def _finish_reason(controls: Controls, index: int) -> str:
    reasons = controls.finish_reasons
    return reasons[min(index, len(reasons) - 1)] if reasons else "stop"


def _choice_count(body: dict[str, Any]) -> int:
    n = body.get("n")
    return n if isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 128 else 1


def _chat_schema(body: dict[str, Any]) -> Any | None:
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return (fmt.get("json_schema") or {}).get("schema") or {}
    return None


def _chat_usage(body: dict[str, Any], controls: Controls, completion: int) -> dict[str, Any]:
    if controls.usage is not None:
        usage = fill_total(controls.usage, "total_tokens", ("prompt_tokens", "completion_tokens"))
    else:
        prompt = prompt_tokens(body.get("messages"))
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
    return _with_cost(usage, controls)


def chat(body: dict[str, Any], controls: Controls, now: float) -> Served:
    model = controls.model or str(body.get("model") or "unknown")
    pieces = answer_pieces(controls, _chat_schema(body))
    choices = range(_choice_count(body))
    usage = _chat_usage(body, controls, len(pieces) * len(choices))
    record = UsageRecord("openai.completions", model, usage, now)
    base = {
        "id": new_id("chatcmpl-"),
        "created": int(now),
        "model": model,
        "service_tier": _service_tier(body),
        "system_fingerprint": "fp_fake",
    }
    if not body.get("stream"):
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(pieces),
            "refusal": None,
            "annotations": [],
        }
        whole = [
            {"index": i, "message": message, "logprobs": None, "finish_reason": _finish_reason(controls, i)}
            for i in choices
        ]
        reply = {**base, "object": "chat.completion", "choices": whole, "usage": usage}
        return Served(record, body=_whole(reply, controls))

    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    extra: dict[str, Any] = {"usage": None} if include_usage else {}

    style = controls.stream_usage

    def chunk(index: int, delta: dict[str, Any], finish: str | None, **more: Any) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse(shaped({**base, "object": "chat.completion.chunk", "choices": [choice], **extra, **more}, controls))

    finish_extra: dict[str, Any] = {}
    if style == "finish" and include_usage:
        finish_extra = {"usage": usage}
    elif style == "x_groq":
        finish_extra = {"x_groq": {"id": "req_fake", "usage": usage}}
    frames = [Frame(chunk(i, {"role": "assistant", "content": "", "refusal": None}, None)) for i in choices]
    frames += [Frame(chunk(i, {"content": piece}, None), content=True) for piece in pieces for i in choices]
    for i in choices:  # the usage rides on the last finish chunk (with n > 1, once)
        frames.append(Frame(chunk(i, {}, _finish_reason(controls, i), **(finish_extra if i == choices[-1] else {}))))
    if include_usage and style != "finish":
        usage_chunk = {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}
        frames.append(Frame(sse(shaped(usage_chunk, controls))))
    frames.append(Frame(sse("[DONE]")))
    return Served(record, stream=StreamPlan(frames, sse(_GARBAGE)))


def completions(body: dict[str, Any], controls: Controls, now: float) -> Served:
    """Legacy `/v1/completions`; same usage shape and stream rules as chat."""
    model = controls.model or str(body.get("model") or "unknown")
    pieces = answer_pieces(controls, None)
    if controls.usage is None:
        prompt = prompt_tokens(body.get("prompt"))
        usage = _with_cost(
            {"prompt_tokens": prompt, "completion_tokens": len(pieces), "total_tokens": prompt + len(pieces)},
            controls,
        )
    else:
        usage = _chat_usage(body, controls, len(pieces))
    record = UsageRecord("openai.completions", model, usage, now)
    base = {"id": new_id("cmpl-"), "object": "text_completion", "created": int(now), "model": model}
    if not body.get("stream"):
        choice = {"text": "".join(pieces), "index": 0, "logprobs": None, "finish_reason": _finish_reason(controls, 0)}
        return Served(record, body=_whole({**base, "choices": [choice], "usage": usage}, controls))
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    extra: dict[str, Any] = {"usage": None} if include_usage else {}

    def chunk(text: str, finish: str | None) -> bytes:
        choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}
        return sse(shaped({**base, "choices": [choice], **extra}, controls))

    frames = [Frame(chunk(piece, None), content=True) for piece in pieces]
    frames.append(Frame(chunk("", _finish_reason(controls, 0))))
    if include_usage:
        frames.append(Frame(sse(shaped({**base, "choices": [], "usage": usage}, controls))))
    frames.append(Frame(sse("[DONE]")))
    return Served(record, stream=StreamPlan(frames, sse(_GARBAGE)))


def _responses_schema(body: dict[str, Any]) -> Any | None:
    fmt = (body.get("text") or {}).get("format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return fmt.get("schema") or {}
    return None


def responses(body: dict[str, Any], controls: Controls, now: float) -> Served:
    model = controls.model or str(body.get("model") or "unknown")
    pieces = answer_pieces(controls, _responses_schema(body))
    if controls.usage is not None:
        usage = fill_total(controls.usage, "total_tokens", ("input_tokens", "output_tokens"))
    else:
        prompt = prompt_tokens(body.get("instructions"), body.get("input"))
        usage = {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": len(pieces),
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + len(pieces),
        }
    usage = _with_cost(usage, controls)
    record = UsageRecord("openai.completions", model, usage, now)
    text = "".join(pieces)
    msg_id = new_id("msg_")

    def message(status: str, content: str | None) -> dict[str, Any]:
        parts = [] if content is None else [_text_part(content)]
        return {"id": msg_id, "type": "message", "status": status, "role": "assistant", "content": parts}

    def response(status: str, output: list[Any], final_usage: dict[str, Any] | None) -> dict[str, Any]:
        whole = {
            "id": resp_id,
            "object": "response",
            "created_at": int(now),
            "completed_at": int(now) if status == "completed" else None,
            "status": status,
            "model": model,
            "output": output,
            "usage": final_usage,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "metadata": body.get("metadata") or {},
            "parallel_tool_calls": True,
            "temperature": 1.0,
            "top_p": 1.0,
            "tool_choice": "auto",
            "tools": [],
            "text": body.get("text") or {"format": {"type": "text"}},
            "store": body.get("store", True),
            "previous_response_id": body.get("previous_response_id"),
            "max_output_tokens": body.get("max_output_tokens"),
            "service_tier": _service_tier(body),
        }
        return shaped(whole, controls)

    resp_id = new_id("resp_")
    final = strip_usage(response("completed", [message("completed", text)], usage), "usage", controls)
    if not body.get("stream"):
        return Served(record, body=final)

    seq = iter(range(1_000_000))
    ref: dict[str, Any] = {"item_id": msg_id, "output_index": 0, "content_index": 0}

    def event(kind: str, *, content: bool = False, **fields: Any) -> Frame:
        return Frame(sse({"type": kind, "sequence_number": next(seq), **fields}, event=kind), content=content)

    frames = [
        event("response.created", response=response("in_progress", [], None)),
        event("response.in_progress", response=response("in_progress", [], None)),
        event("response.output_item.added", output_index=0, item=message("in_progress", None)),
        event("response.content_part.added", **ref, part=_text_part("")),
    ]
    frames += [
        event("response.output_text.delta", content=True, **ref, delta=piece, logprobs=[]) for piece in pieces
    ]
    frames += [
        event("response.output_text.done", **ref, text=text, logprobs=[]),
        event("response.content_part.done", **ref, part=_text_part(text)),
        event("response.output_item.done", output_index=0, item=message("completed", text)),
        event("response.completed", response=final),
    ]
    return Served(record, stream=StreamPlan(frames, sse(_GARBAGE, event="response.output_text.delta")))


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _embedding_inputs(value: Any) -> list[Any]:
    """Split `input` into one entry per embedding: a string, a token array, or a list of either."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return [value]
    return list(value) if isinstance(value, list) else [value]


def _vector(index: int, dims: int) -> list[float]:
    # Multiples of 1/4 are exact in float32, so base64 and float answers compare equal.
    return [((index + i) % 8) * 0.25 for i in range(dims)]


def embeddings(body: dict[str, Any], controls: Controls, now: float) -> Served:
    model = controls.model or str(body.get("model") or "unknown")
    inputs = _embedding_inputs(body.get("input"))
    dims = int(body.get("dimensions") or 8)
    if controls.usage is not None:
        usage = fill_total(controls.usage, "total_tokens", ("prompt_tokens",))
    else:
        tokens = sum(len(i) if isinstance(i, list) else prompt_tokens(i) for i in inputs)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    usage = _with_cost(usage, controls)
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index in range(len(inputs)):
        vector = _vector(index, dims)
        encoded: Any = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode() if as_base64 else vector
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    reply = {"object": "list", "data": data, "model": model, "usage": usage}
    return Served(UsageRecord("openai.embeddings", model, usage, now), body=_whole(reply, controls))


_PIXEL_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def images(body: dict[str, Any], controls: Controls, now: float) -> Served:
    """`/v1/images/generations`: one 1x1 PNG per image asked for, with token usage as GPT Image
    models report it (streamed as `image_generation.partial_image` then `.completed` events)."""
    model = controls.model or str(body.get("model") or "unknown")
    count = int(body.get("n") or 1)
    if controls.usage is not None:
        usage = fill_total(controls.usage, "total_tokens", ("input_tokens", "output_tokens"))
    else:
        prompt = prompt_tokens(body.get("prompt"))
        usage = {
            "input_tokens": prompt,
            "input_tokens_details": {"text_tokens": prompt, "image_tokens": 0},
            "output_tokens": 272 * count,
            "total_tokens": prompt + 272 * count,
        }
    record = UsageRecord("openai.images", model, usage, now)
    if not body.get("stream"):
        reply = {"created": int(now), "data": [{"b64_json": _PIXEL_PNG} for _ in range(count)], "usage": usage}
        return Served(record, body=strip_usage(reply, "usage", controls))
    base = {"b64_json": _PIXEL_PNG, "created_at": int(now), "size": "1024x1024", "quality": "low",
            "background": "opaque", "output_format": "png"}
    frames = [
        Frame(sse({"type": "image_generation.partial_image", "partial_image_index": 0, **base},
                  event="image_generation.partial_image"), content=True),
        Frame(sse({"type": "image_generation.completed", "usage": usage, **base}, event="image_generation.completed")),
    ]
    return Served(record, stream=StreamPlan(frames, sse("{this is not json")))
