"""Gemini Developer API wire dialect (`models/{model}:generateContent` / `:streamGenerateContent`).

Like the real API, stream chunks before the last carry a partial `usageMetadata` (prompt count only)
and the last chunk carries the finish reason and the complete usage: a meter must take the last
chunk's figures, not add them up.
"""

from __future__ import annotations

import json
from typing import Any

from ._content import answer_pieces, fill_total, prompt_tokens
from ._controls import Controls, strip_usage
from ._wire import Frame, Served, StreamPlan, UsageRecord, new_id, sse

_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}

_TOTAL_PARTS = ("promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount", "toolUsePromptTokenCount")


def error_body(status: int, message: str) -> dict[str, Any]:
    kind = _STATUS.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
    return {"error": {"code": status, "message": message, "status": kind}}


def _schema(body: dict[str, Any]) -> Any | None:
    config = body.get("generationConfig") or {}
    for key in ("responseJsonSchema", "responseSchema"):
        if isinstance(config.get(key), dict):
            return config[key]
    return None


def generate(model_path: str, body: dict[str, Any], controls: Controls, now: float, stream: bool) -> Served:
    model = controls.model or model_path
    pieces = answer_pieces(controls, _schema(body))
    if controls.usage is not None:
        usage = fill_total(controls.usage, "totalTokenCount", _TOTAL_PARTS)
    else:
        prompt = prompt_tokens(body.get("systemInstruction"), body.get("contents"))
        usage = {
            "promptTokenCount": prompt,
            "candidatesTokenCount": len(pieces),
            "totalTokenCount": prompt + len(pieces),
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
        }
    record = UsageRecord("gemini", model, usage, now)
    response_id = new_id("fake")

    def reply(text: str, finish: bool, meta: dict[str, Any]) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
        if finish:
            candidate["finishReason"] = "STOP"
        return {
            "candidates": [candidate],
            "usageMetadata": meta,
            "modelVersion": model,
            "responseId": response_id,
        }

    if not stream:
        return Served(record, body=strip_usage(reply("".join(pieces), True, usage), "usageMetadata", controls))

    prompt_count = usage.get("promptTokenCount")
    partial: dict[str, Any] = {"promptTokenCount": prompt_count}
    if isinstance(prompt_count, int):
        partial["totalTokenCount"] = prompt_count
    last = len(pieces) - 1
    frames = [
        Frame(sse(reply(piece, i == last, usage if i == last else partial)), content=True)
        for i, piece in enumerate(pieces)
    ]
    if not frames:
        frames = [Frame(sse(reply("", True, usage)))]
    return Served(record, stream=StreamPlan(frames, sse("{this is not json")))


def embed(model_path: str, body: dict[str, Any], controls: Controls, now: float) -> Served:
    """`:batchEmbedContents` (the Gemini API's embeddings): one vector per request, and the prompt's
    token count in `usageMetadata` (`x-fake-usage` replaces it; `x-fake-no-usage` drops it)."""
    model = controls.model or model_path
    requests = body.get("requests") or []
    if controls.usage is not None:
        usage = dict(controls.usage)
    else:
        prompt = sum(prompt_tokens(request.get("content")) for request in requests if isinstance(request, dict))
        usage = {"promptTokenCount": prompt, "totalTokenCount": prompt}
    reply = {"embeddings": [{"values": [0.0, 0.5, 1.0]} for _ in requests], "usageMetadata": usage}
    return Served(UsageRecord("gemini", model, usage, now), body=strip_usage(reply, "usageMetadata", controls))


def _iso(at: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(at, timezone.utc).isoformat().replace("+00:00", "Z")


def batch(
    model_path: str, body: dict[str, Any], controls: Controls, now: float, name: str, output_file: str | None = None
) -> tuple[dict[str, Any], dict[str, Any], list[UsageRecord], bytes]:
    """A Batch Mode job of inlined requests (`models/{model}:batchGenerateContent`), done at once:
    (what `create` answers: the job pending; what `batches/{id}` answers: the job succeeded with each
    response inlined, in the requests' order; the usage it bills; the responses file's bytes). Each
    request is answered as `generateContent` answers it (`x-fake-*` controls apply to all); one whose
    metadata `key` starts with `error` fails (not billed). With `output_file` (a file name) the
    responses go to that file instead, one JSON line each (`{"key", "response"}` or `{"key",
    "error"}`), as the API writes a job's responses when its requests came in a file."""
    source = ((body.get("batch") or {}).get("inputConfig") or {}).get("requests") or {}
    inlined: list[dict[str, Any]] = []
    records: list[UsageRecord] = []
    for entry in source.get("requests") or []:
        entry = entry if isinstance(entry, dict) else {}
        metadata = entry.get("metadata")
        answer: dict[str, Any] = {"metadata": metadata} if isinstance(metadata, dict) else {}
        if str((metadata or {}).get("key", "")).startswith("error"):
            answer["error"] = {"code": 400, "message": "fake provider: a failing batch request"}
        else:
            served = generate(model_path, entry.get("request") or {}, controls, now, False)
            records.append(served.record)
            answer["response"] = served.body
        inlined.append(answer)
    created = {
        "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
        "name": name,
        "model": f"models/{controls.model or model_path}",
        "displayName": str((body.get("batch") or {}).get("displayName") or ""),
        "createTime": _iso(now),
        "updateTime": _iso(now),
        "state": "BATCH_STATE_PENDING",
    }
    lines = b""
    if output_file is None:
        output: dict[str, Any] = {"inlinedResponses": {"inlinedResponses": inlined}}
    else:
        output = {"responsesFile": output_file}
        lines = b"".join(
            json.dumps({"key": str((answer.pop("metadata", None) or {}).get("key", index)), **answer}).encode() + b"\n"
            for index, answer in enumerate(inlined)
        )
    done = {**created, "state": "BATCH_STATE_SUCCEEDED", "endTime": _iso(now), "output": output}
    return {"name": name, "metadata": created}, {"name": name, "metadata": done, "done": True}, records, lines
