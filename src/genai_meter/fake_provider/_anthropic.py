"""Anthropic Messages wire dialect (also serves `client.beta.messages`; any query string is ignored).

The stream mirrors the real event order. `message_start` carries the input-side usage with a token
or so of output, and `message_delta` carries the *cumulative* final usage (output plus, as the
current API does, the input and cache counts): a meter that adds the two output counts is wrong, and
the fake is built to expose that.
"""

from __future__ import annotations

import json
from typing import Any

from ._content import answer_pieces, prompt_tokens
from ._controls import Controls, shaped, strip_usage
from ._wire import Frame, Served, StreamPlan, UsageRecord, new_id, sse

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}

# Fields a real message_delta repeats from the final usage (never the cache_creation breakdown).
_DELTA_FIELDS = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "server_tool_use",
    "output_tokens_details",
    "iterations",
)


def error_body(status: int, message: str) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": new_id("req_")}


def _schema(body: dict[str, Any]) -> Any | None:
    for holder in (body.get("output_format"), (body.get("output_config") or {}).get("format")):
        if isinstance(holder, dict) and holder.get("type") == "json_schema":
            return holder.get("schema") or {}
    return None


def count_tokens(body: dict[str, Any]) -> dict[str, Any]:
    return {"input_tokens": prompt_tokens(body.get("system"), body.get("messages"))}


def messages(body: dict[str, Any], controls: Controls, now: float) -> Served:
    model = controls.model or str(body.get("model") or "unknown")
    pieces = answer_pieces(controls, _schema(body))
    if controls.usage is not None:
        usage = dict(controls.usage)
    else:
        usage = {
            "input_tokens": prompt_tokens(body.get("system"), body.get("messages")),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens": len(pieces),
            "service_tier": "standard",
        }
    record = UsageRecord("anthropic.messages", model, usage, now)
    msg_id = new_id("msg_")

    def message(content: list[Any], stop: str | None, msg_usage: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": msg_usage,
        }

    text = "".join(pieces)
    if not body.get("stream"):
        reply = message([{"type": "text", "text": text}], "end_turn", usage)
        reply = shaped(reply, controls)
        return Served(record, body=strip_usage(reply, "usage", controls))

    output = usage.get("output_tokens")
    start_output = min(1, output) if isinstance(output, int) else output
    start_usage = {**usage, "output_tokens": start_output}
    delta_usage = {key: usage[key] for key in _DELTA_FIELDS if key in usage}
    delta_usage["output_tokens"] = output

    def event(kind: str, *, content: bool = False, **fields: Any) -> Frame:
        return Frame(sse({"type": kind, **fields}, event=kind), content=content)

    frames = [
        event("message_start", message=message([], None, start_usage)),
        event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
        event("ping"),
    ]
    frames += [
        event("content_block_delta", content=True, index=0, delta={"type": "text_delta", "text": piece})
        for piece in pieces
    ]
    frames += [
        event("content_block_stop", index=0),
        event("message_delta", delta={"stop_reason": "end_turn", "stop_sequence": None}, usage=delta_usage),
        event("message_stop"),
    ]
    return Served(record, stream=StreamPlan(frames, sse("{this is not json", event="content_block_delta")))


def _iso(at: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(at, timezone.utc).isoformat().replace("+00:00", "Z")


def message_batch(
    body: dict[str, Any], controls: Controls, now: float, batch_id: str, results_url: str
) -> tuple[dict[str, Any], bytes, list[UsageRecord]]:
    """A Message Batch, ended at once: (the batch object, its results as JSON lines, the usage it
    bills). Each request is answered as `messages` answers it, its usage at the batch tier (unless
    `x-fake-usage` sets the usage); a request whose `custom_id` starts with `error` fails (not billed)."""
    lines: list[bytes] = []
    records: list[UsageRecord] = []
    counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    for entry in body.get("requests") or []:
        custom_id = str(entry.get("custom_id", ""))
        if custom_id.startswith("error"):
            counts["errored"] += 1
            error = {"type": "invalid_request_error", "message": "fake provider: a failing batch request"}
            result: dict[str, Any] = {"type": "errored", "error": {"type": "error", "error": error}}
        else:
            counts["succeeded"] += 1
            served = messages({**(entry.get("params") or {}), "stream": False}, controls, now)
            message = dict(served.body or {})
            if controls.usage is None:
                message["usage"] = {**message["usage"], "service_tier": "batch"}
            records.append(UsageRecord(served.record.api, served.record.model, message["usage"], now))
            result = {"type": "succeeded", "message": message}
        lines.append(json.dumps({"custom_id": custom_id, "result": result}).encode())
    batch = {
        "id": batch_id,
        "type": "message_batch",
        "processing_status": "ended",
        "request_counts": counts,
        "created_at": _iso(now),
        "ended_at": _iso(now),
        "expires_at": _iso(now + 86400),
        "archived_at": None,
        "cancel_initiated_at": None,
        "results_url": results_url,
    }
    return batch, b"\n".join(lines) + b"\n", records
