"""Metering a Gemini Batch Mode job's inlined responses as the app reads them (`batches.get`).

A Batch Mode job's requests are billed when they succeed, at the batch price (half the standard
one). genai-meter sees neither the requests being answered nor their usage arriving, only the job
the app reads back once it is done, whose inlined responses carry each request's `usage_metadata`.
So each response becomes a call then: a span (`genai_meter.batch.id` the job's name,
`genai_meter.batch.custom_id` the request's metadata `key` where it has one), tokens, cost at the
batch tier, attribution (the context the app reads the job in), a ledger row (tier `batch`), and
budgets count it (never block it: it is spent). No duration is recorded: it would be the time it
took to read the job. Failed requests are not billed and not recorded. Reading the job again meters
nothing more (its name and each response's position are remembered, a bounded number).

Creating a job of inlined requests (`batches.create`) is checked against the hard budgets first:
its estimate (every request's prompt and whole `max_output_tokens` at the batch price) and its
request count must fit, or `BudgetExceeded` is raised and nothing is sent. Nothing is reserved.

A job whose requests came in a file writes its responses to a file (`dest.file_name`), which the
app reads with `files.download`: a downloaded file whose first line is such a response
(`{"key": ..., "response": ...}` or `{"key": ..., "error": ...}`) has each response metered as above
(span `genai_meter.batch.output_file_id` the file's name, `.custom_id` the key; model from the
response's `modelVersion`), once per file and key; any other file (a generated video) is passed on
after a look at its first bytes. Downloaded to a path, the file is read back from it (up to
`_MAX_OUTPUT_BYTES`); to a stream, it is not metered.

Not metered: a job of embeddings, and Vertex AI batch prediction jobs (their output goes to Cloud
Storage or BigQuery, which genai-meter does not read).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from ... import names
from ..._call import begin_call
from ..._faults import record_fault
from ..._runtime import get_runtime
from ..._usage import field
from .._batch_seen import first_time
from .._metering import batch_request_cost, check_batch, checked_before, observed_after
from .._values import content_chars, text
from ._observers import finish_response
from ._request import client_info, max_output_tokens, model_name

OPERATION = "generate_content"
_MAX_OUTPUT_BYTES = 64 << 20  # a responses file downloaded to a path is read back up to this size


def _meter_job(job: Any, instance: Any, _args: tuple[Any, ...], _kwargs: dict[str, Any]) -> None:
    responses = field(field(job, "dest"), "inlined_responses")
    if not responses or not isinstance(responses, list):
        return
    runtime = get_runtime()
    info = client_info(instance, runtime)
    name = text(field(job, "name")) or "unknown"
    model = model_name(field(job, "model"))
    for index, inlined in enumerate(responses):
        response = field(inlined, "response")
        if response is None or field(inlined, "error") is not None:
            continue  # not billed
        if not first_time(f"gemini-batch:{name}#{index}"):
            continue
        try:
            metadata = field(inlined, "metadata")
            key = text(metadata.get("key")) if isinstance(metadata, dict) else None
            _meter_response(runtime, info, model, response, {names.BATCH_ID: name, names.BATCH_CUSTOM_ID: key})
        except Exception as fault:
            record_fault("google_genai.batch_result", fault)


def _meter_response(runtime: Any, info: Any, model: str, response: Any, attributes: Mapping[str, str | None]) -> None:
    """One response of a done job: a call made already, at the batch tier (the response cannot say
    it), with the span attributes that are set."""
    call = begin_call(runtime, info.provider, OPERATION, model, info.server, False, None, made=True)
    for key, value in attributes.items():
        if value is not None:
            call.span.set_attribute(key, value)
    finish_response(call, response, service_tier="batch")


# `Batches.get` / `AsyncBatches.get`: the job, its inlined responses metered once
get_wrapper, async_get_wrapper = observed_after(_meter_job, "google_genai.batch_result")


def _check_budgets(instance: Any, _args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse the job (BudgetExceeded) where a hard budget has no room for its estimate."""
    runtime = get_runtime()
    requests = kwargs.get("src")
    if requests is not None and not isinstance(requests, list | str):  # a `BatchJobSource` (object or dict)
        requests = field(requests, "inlined_requests")
    if runtime.guard is None or not isinstance(requests, list) or not requests:
        return  # (a file of requests, or no budgets)
    provider = client_info(instance, runtime).provider
    default_model = model_name(kwargs.get("model"))
    total = 0.0
    for request in requests:
        model = model_name(field(request, "model")) if field(request, "model") else default_model
        chars = content_chars(field(request, "contents"))
        total += batch_request_cost(runtime, provider, model, chars, max_output_tokens(field(request, "config")))
    check_batch(runtime, provider, default_model, total, len(requests))


# `Batches.create` / `AsyncBatches.create`: checked against the budgets before the job is sent
create_wrapper, async_create_wrapper = checked_before(_check_budgets, "google_genai.batch_create")


def _response_lines(data: bytes) -> list[bytes] | None:
    """The lines of a Batch Mode responses file, or None for any other file (decided by its first
    line, looked at only where the file starts as a JSON object does)."""
    if data[:64].lstrip()[:1] != b"{":
        return None
    end = data.find(b"\n")
    try:
        first = json.loads(data[: end if end >= 0 else len(data)])
    except ValueError:
        return None
    if not isinstance(first, dict) or "key" not in first or not ("response" in first or "error" in first):
        return None
    return data.splitlines()


def _meter_output(data: bytes, file_name: str, instance: Any) -> None:
    lines = _response_lines(data)
    if lines is None:
        return
    from google.genai import types

    runtime = get_runtime()
    info = client_info(instance, runtime)
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            response = entry.get("response") if isinstance(entry, dict) else None
            if not isinstance(response, dict):
                continue  # an error: not billed
            key = text(entry.get("key")) or str(index)
            if not first_time(f"gemini-batch-file:{file_name}#{key}"):
                continue
            parsed = types.GenerateContentResponse.model_validate(response)
            attributes = {names.BATCH_OUTPUT_FILE_ID: file_name, names.BATCH_CUSTOM_ID: key}
            _meter_response(runtime, info, model_name(parsed.model_version), parsed, attributes)
        except Exception as fault:  # a line that cannot be read: skipped, counted
            record_fault("google_genai.batch_output", fault)


def _downloaded(data: Any, instance: Any, _args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    file = kwargs.get("file")
    file_name = text(file) or text(field(file, "name")) or "unknown"
    if data is None:
        destination = kwargs.get("destination")
        if not isinstance(destination, str | os.PathLike) or os.path.getsize(destination) > _MAX_OUTPUT_BYTES:
            return
        with open(destination, "rb") as handle:
            if handle.read(1) != b"{":
                return
            handle.seek(0)
            data = handle.read()
    if isinstance(data, bytes):
        _meter_output(data, file_name, instance)


# `Files.download` / `AsyncFiles.download`: a Batch Mode responses file is metered as it is downloaded
download_wrapper, async_download_wrapper = observed_after(_downloaded, "google_genai.batch_output")
