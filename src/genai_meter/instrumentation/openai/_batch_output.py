"""Metering an OpenAI Batch's output file as the app downloads it (`files.content`).

A batch's requests are billed as they complete, at the batch price (half the standard one).
genai-meter sees neither them being sent nor answered, only the output file the app downloads: JSON
lines of `{"id": "batch_req_...", "custom_id", "response": {"status_code", "body"}}`. So
`files.content` is wrapped: a file whose first line is such a result (a few bytes looked at; any
other file is passed on untouched) has each answered request (status 200) metered then, as the call
its body is (chat completion, legacy completion, Responses API response, embeddings): a span
(`genai_meter.batch.custom_id`, `genai_meter.batch.output_file_id`), tokens, cost at the `batch`
tier, attribution from the context the app downloads it in, a ledger row, budgets counting it without
blocking it (`begin_call(made=True)`), no duration. Failed requests are not billed and not recorded.
A result already metered in this process (by its `batch_req_` id) is not metered again.

Not metered: an output file read through `with_streaming_response` (the app streams the bytes
itself) or through the deprecated `files.retrieve_content`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from ... import names
from ..._call import Call, begin_call
from ..._faults import record_fault
from ..._runtime import get_runtime
from .._batch_seen import first_time
from .._metering import observed_after
from .._values import text
from ._observers import finish_chat, finish_embedding, finish_response
from ._request import client_info

_MARK = b'"batch_req_'  # in a batch output's first line, the result's id
_BATCH_TIER = "batch"


# the body's `object` -> (operation name, how its call finishes)
_BODIES: dict[str, tuple[str, Callable[[Call, Any], None]]] = {
    "chat.completion": ("chat", finish_chat),
    "text_completion": ("text_completion", finish_chat),
    "response": ("chat", finish_response),
    "list": ("embeddings", finish_embedding),
}


def is_batch_output(data: bytes) -> bool:
    first = data[:200]
    return first.lstrip().startswith(b"{") and _MARK in first


def meter_batch_output(data: bytes, file_id: str, provider: str, server: str) -> None:
    """Meter each answered request of a batch output file (never raises: a line it cannot read is
    recorded as a fault and skipped)."""
    for line in data.splitlines():
        if line.strip():
            try:
                _meter_line(line, file_id, provider, server)
            except Exception as fault:
                record_fault("openai.batch_output", fault)


def _meter_line(line: bytes, file_id: str, provider: str, server: str) -> None:
    result = json.loads(line, object_hook=lambda values: SimpleNamespace(**values))
    response = getattr(result, "response", None)
    body = getattr(response, "body", None)
    if getattr(response, "status_code", None) != 200 or body is None:
        return  # not billed
    kind = _BODIES.get(str(getattr(body, "object", "")))
    result_id = text(getattr(result, "id", None))
    if kind is None or (result_id is not None and not first_time(result_id)):
        return
    operation, finish = kind
    body.service_tier = _BATCH_TIER  # (the body says the tier it would have had: `default`)
    model = text(getattr(body, "model", None)) or "unknown"
    call = begin_call(get_runtime(), provider, operation, model, server, False, None, made=True)
    call.service_tier_key = names.OPENAI_RESPONSE_SERVICE_TIER
    call.span.set_attribute(names.BATCH_OUTPUT_FILE_ID, file_id)
    custom_id = text(getattr(result, "custom_id", None))
    if custom_id is not None:
        call.span.set_attribute(names.BATCH_CUSTOM_ID, custom_id)
    finish(call, body)


def _meter_download(content: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    data = content.content
    if not isinstance(data, bytes) or not is_batch_output(data):
        return
    info = client_info(instance, get_runtime())
    file_id = text(kwargs.get("file_id", args[0] if args else None)) or "unknown"
    meter_batch_output(data, file_id, info.provider, info.server)


# `Files.content` / `AsyncFiles.content`: the SDK's answer, unchanged; a batch output in it is metered
content_wrapper, async_content_wrapper = observed_after(_meter_download, "openai.batch_output")
