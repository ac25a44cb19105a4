"""OpenAI's Files and Batch endpoints, enough for a batch's round trip: upload the input file
(`POST /v1/files`, multipart), create the batch (`POST /v1/batches`, completed at once), retrieve it
(`GET /v1/batches/{id}`) and download its output (`GET /v1/files/{id}/content`, JSON lines).

Each input line is answered as its endpoint answers a single request, under the batch request's
`x-fake-*` controls; a line whose `custom_id` starts with `error` fails (status 400, not billed).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from ._controls import Controls
from ._wire import Served, UsageRecord, new_id

Route = Callable[[dict[str, Any], Controls, float], Served]


def form_fields(content_type: str, body: bytes) -> dict[str, tuple[bytes, str | None]]:
    """The fields of a multipart/form-data body: name -> (bytes, file name or None); a repeated
    name (`image[]`) keeps its last value."""
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    fields: dict[str, tuple[bytes, str | None]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        decoded = part.get_payload(decode=True)
        if isinstance(name, str):
            fields[name] = (decoded if isinstance(decoded, bytes) else b"", part.get_filename())
    return fields


def uploaded_file(content_type: str, body: bytes) -> tuple[str, bytes, str]:
    """(purpose, file bytes, file name) of a multipart/form-data upload."""
    fields = form_fields(content_type, body)
    data, filename = fields.get("file", (b"", None))
    return fields.get("purpose", (b"", None))[0].decode(), data, filename or "upload.jsonl"


def file_object(file_id: str, data: bytes, filename: str, purpose: str, now: float) -> dict[str, Any]:
    return {
        "id": file_id,
        "object": "file",
        "bytes": len(data),
        "created_at": int(now),
        "filename": filename,
        "purpose": purpose,
        "status": "processed",
    }


def run_batch(
    body: dict[str, Any], input_data: bytes, routes: dict[str, Route], controls: Controls, now: float
) -> tuple[dict[str, Any], bytes, list[UsageRecord]]:
    """(the batch object, completed, without its output file id; the output's JSON lines; the usage billed)."""
    lines: list[bytes] = []
    records: list[UsageRecord] = []
    completed = failed = 0
    for raw in input_data.splitlines():
        if not raw.strip():
            continue
        entry = json.loads(raw)
        custom_id = str(entry.get("custom_id", ""))
        route = routes.get(str(entry.get("url", "")))
        request_id = new_id("req_")
        if route is None or custom_id.startswith("error"):
            failed += 1
            error = {"message": "fake provider: a failing batch request", "type": "invalid_request_error"}
            response: dict[str, Any] = {"status_code": 400, "request_id": request_id, "body": {"error": error}}
        else:
            completed += 1
            served = route({**(entry.get("body") or {}), "stream": False}, controls, now)
            records.append(served.record)
            response = {"status_code": 200, "request_id": request_id, "body": served.body}
        line = {"id": new_id("batch_req_"), "custom_id": custom_id, "response": response, "error": None}
        lines.append(json.dumps(line).encode())
    batch = {
        "id": new_id("batch_"),
        "object": "batch",
        "endpoint": body.get("endpoint"),
        "input_file_id": body.get("input_file_id"),
        "completion_window": body.get("completion_window", "24h"),
        "status": "completed",
        "error_file_id": None,
        "created_at": int(now),
        "completed_at": int(time.time()),
        "request_counts": {"total": completed + failed, "completed": completed, "failed": failed},
    }
    return batch, b"\n".join(lines) + b"\n", records
