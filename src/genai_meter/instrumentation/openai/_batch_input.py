"""Checking an OpenAI Batch against the budgets before it is created (`batches.create`).

A batch's requests are in its input file, uploaded beforehand (`files.create(purpose="batch")`). So
the upload is wrapped too: after the SDK has sent it, where budgets are configured, the file's
bytes are read again (from `bytes`, a seekable file object rewound to where it started, or a path;
at most `_MAX_BYTES`) and the batch it describes is estimated: each request's prompt (about 4
characters a token) and whole output limit (`max_completion_tokens`, `max_tokens`,
`max_output_tokens`) at the batch price. The estimate is kept by file id (a bounded number), and
`batches.create` with that input file is checked against the hard budgets
(`BudgetGuard.check_batch`): `BudgetExceeded` and nothing is sent where it does not fit. A batch
whose input file was uploaded elsewhere (another process, the dashboard) is not checked. Nothing is
reserved: its cost counts as its output is read (`_batch_output`).
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..._faults import record_fault
from ..._runtime import Runtime, get_runtime
from .._metering import batch_request_cost, check_batch, checked_before
from .._values import content_chars, number, text
from ._request import client_info

_MAX_BYTES = 64 << 20  # a larger input file is not read again (its batch is not checked)
_KEPT = 1_000  # input files whose estimate is kept
_PROMPT_KEYS = ("messages", "input", "prompt", "instructions")
_OUTPUT_KEYS = ("max_completion_tokens", "max_tokens", "max_output_tokens")

# input file id -> (estimated cost in USD, requests, the first request's model), newest last
_estimates: OrderedDict[str, tuple[float, int, str]] = OrderedDict()


def _file_bytes(file: Any, start: int | None) -> bytes | None:
    """The bytes of what `files.create` was given as `file` (also a (name, content, ...) tuple)."""
    content = file[1] if isinstance(file, tuple) and len(file) >= 2 else file
    if isinstance(content, bytes):
        return content if len(content) <= _MAX_BYTES else None
    if isinstance(content, os.PathLike):
        path = Path(os.fspath(content))
        return path.read_bytes() if path.stat().st_size <= _MAX_BYTES else None
    if start is not None and hasattr(content, "read"):
        end = content.tell()
        content.seek(start)
        try:
            data = content.read(_MAX_BYTES + 1)
        finally:
            content.seek(end)
        return data if isinstance(data, bytes) and len(data) <= _MAX_BYTES else None
    return None


def _start(file: Any) -> int | None:
    """Where a seekable file object starts, before the SDK reads it (None: not one)."""
    content = file[1] if isinstance(file, tuple) and len(file) >= 2 else file
    seekable = getattr(content, "seekable", None)
    if callable(seekable) and seekable() and hasattr(content, "tell"):
        position = content.tell()
        return position if isinstance(position, int) else None
    return None


def estimate_batch(runtime: Runtime, provider: str, data: bytes) -> tuple[float, int, str]:
    """(estimated cost in USD, requests, first model) of a batch input file's JSON lines."""
    total, count, first_model = 0.0, 0, ""
    for line in data.splitlines():
        if not line.strip():
            continue
        count += 1
        request = json.loads(line)
        body = request.get("body") if isinstance(request, dict) else None
        if not isinstance(body, dict):
            continue
        model = text(body.get("model")) or "unknown"
        first_model = first_model or model
        embeddings = str(request.get("url", "")).endswith("/embeddings")
        limit = 0 if embeddings else next((number(body.get(key)) for key in _OUTPUT_KEYS if key in body), None)
        chars = sum(content_chars(body.get(key)) for key in _PROMPT_KEYS)
        total += batch_request_cost(runtime, provider, model, chars, limit)
    return total, count, first_model


def _remember(file_id: str, estimate: tuple[float, int, str]) -> None:
    _estimates[file_id] = estimate
    while len(_estimates) > _KEPT:
        _estimates.popitem(last=False)


def _after_upload(uploaded: Any, instance: Any, kwargs: dict[str, Any], start: int | None) -> None:
    try:
        runtime = get_runtime()
        if runtime.guard is None or kwargs.get("purpose") != "batch":
            return
        file_id = text(getattr(uploaded, "id", None))
        data = _file_bytes(kwargs.get("file"), start)
        if file_id is None or data is None:
            return
        _remember(file_id, estimate_batch(runtime, client_info(instance, runtime).provider, data))
    except Exception as fault:
        record_fault("openai.batch_input", fault)


def _check_budgets(instance: Any, _args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse the batch (BudgetExceeded) where its input file, uploaded here, does not fit."""
    runtime = get_runtime()
    found = _estimates.get(str(kwargs.get("input_file_id")))
    if runtime.guard is None or found is None:
        return
    estimate, count, model = found
    check_batch(runtime, client_info(instance, runtime).provider, model, estimate, count)


def upload_wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """`Files.create` (sync): a batch input file's estimate is kept once it is uploaded."""
    start = _start(kwargs.get("file"))
    uploaded = wrapped(*args, **kwargs)
    _after_upload(uploaded, instance, kwargs, start)
    return uploaded


async def async_upload_wrapper(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """`AsyncFiles.create`."""
    start = _start(kwargs.get("file"))
    uploaded = await wrapped(*args, **kwargs)
    _after_upload(uploaded, instance, kwargs, start)
    return uploaded


# `Batches.create` / `AsyncBatches.create`: checked against the budgets before the batch is sent
create_wrapper, async_create_wrapper = checked_before(_check_budgets, "openai.batch_create")
