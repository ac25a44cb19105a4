"""The HTTP side of the fake provider: routing, recording, faults, and streaming over HTTP/1.1.

Streams use chunked transfer encoding, so `x-fake-drop-after` can cut one off in a way clients see
as an incomplete body (a plain `Connection: close` stream would look like a clean end). Non-stream
answers carry Content-Length and keep the connection alive, as a real provider's would.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import _anthropic, _gemini, _openai, _openai_batches, _reports
from ._controls import ControlError, Controls, parse_controls
from ._wire import Served, StreamPlan, UsageRecord, dumps, new_id

_ADMIN_OPENAI = "/v1/organization/"
_RESPONSES_PREFIX = "/v1/responses/"
_BATCHES_PREFIX = "/v1/messages/batches/"
_ADMIN_ANTHROPIC = "/v1/organizations/"
_GEMINI_VERSIONS = ("v1", "v1beta", "v1alpha")
_RETRY_STATUSES = (429, 503, 529)
_MALFORMED_BODY = b'{"id": "broken", this is not json'

Handler = Callable[[dict[str, Any], Controls, float], Served]

def _azure_path(path: str) -> str:
    """Azure OpenAI puts the deployment in the path (`/deployments/{name}/chat/completions`)."""
    head, marker, rest = path.partition("/deployments/")
    if not marker or "/" not in rest:
        return path
    return head + "/" + rest.split("/", 1)[1]


_OPENAI_ROUTES: dict[str, Handler] = {
    "/v1/chat/completions": _openai.chat,
    "/v1/responses": _openai.responses,
    "/v1/embeddings": _openai.embeddings,
    "/v1/completions": _openai.completions,
    "/v1/images/generations": _openai.images,
}


@dataclass(frozen=True)
class RecordedRequest:
    """One request as received. `headers` keys are lower-case; `body` is parsed JSON or None."""

    method: str
    path: str  # without the query string
    headers: dict[str, str]
    body: Any
    query: dict[str, list[str]] = field(default_factory=dict)


def _dialect(path: str) -> str:
    if path.startswith("/v1/messages") or path.startswith(_ADMIN_ANTHROPIC):
        return "anthropic"
    if _gemini_route(path) is not None:
        return "gemini"
    return "openai"


def _gemini_route(path: str) -> tuple[str, str] | None:
    """(model, method) for a Gemini model path (`generateContent`, `streamGenerateContent`,
    `batchEmbedContents`, `batchGenerateContent`), else None."""
    parts = path.strip("/").split("/", 2)
    if len(parts) != 3 or parts[0] not in _GEMINI_VERSIONS or parts[1] != "models" or ":" not in parts[2]:
        return None
    model, _, method = parts[2].rpartition(":")
    if method in ("generateContent", "streamGenerateContent", "batchEmbedContents", "batchGenerateContent"):
        return model, method
    return None


def _gemini_name(path: str, collection: str, suffix: str = "") -> str | None:
    """`{collection}/{id}` for a Gemini API path `/{version}/{collection}/{id}{suffix}` (a Batch Mode
    job's `batches/{id}`, a file's `files/{id}:download`), else None."""
    parts = path.strip("/").split("/")
    if len(parts) != 3 or parts[0] not in _GEMINI_VERSIONS or parts[1] != collection:
        return None
    resource = parts[2].removesuffix(suffix) if parts[2].endswith(suffix) else ""
    return f"{collection}/{resource}" if resource else None


def _error_body(path: str, status: int, message: str) -> dict[str, Any]:
    dialect = _dialect(path)
    if dialect == "anthropic":
        return _anthropic.error_body(status, message)
    if dialect == "gemini":
        return _gemini.error_body(status, message)
    return _openai.error_body(status, message)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], provider: FakeProvider) -> None:
        self.provider = provider
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up (tests cancelling streams, stop()) are normal here, not worth a traceback."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self.connections_lock:
            open_now = list(self.connections)
        for conn in open_now:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    _controls: Controls | None = None  # the stream being written's
    _body_delay_ms = 0.0  # the answer being written's (x-fake-body-delay-ms)

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        """Silent on purpose: the default logs request lines to stderr, and tests need quiet output."""

    # --- plumbing --------------------------------------------------------------------------------

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self._send_bytes(status, dumps(body).encode(), headers)

    def _send_bytes(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        delay_ms = self._body_delay_ms
        if delay_ms:  # (x-fake-body-delay-ms: the headers now, the body later)
            self.wfile.flush()
            time.sleep(delay_ms / 1000)
        self.wfile.write(payload)

    def _send_error_for(self, path: str, status: int, message: str, retry_after: str = "0") -> None:
        headers = {"x-request-id": new_id("req_"), "request-id": new_id("req_")}
        if status in _RETRY_STATUSES:
            headers["retry-after"] = retry_after
            # The SDKs ignore a zero Retry-After and fall back to ~0.5 s+ backoff; 1 ms keeps retries fast.
            headers["retry-after-ms"] = str(max(1, round(float(retry_after) * 1000)))
        self._send_json(status, _error_body(path, status, message), headers)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _record(self, path: str, query: dict[str, list[str]], body: Any, counts: bool) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.server.provider._record(RecordedRequest(self.command, path, headers, body, query), counts)

    # --- entry points ----------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._body_delay_ms = 0.0  # (one handler serves every request of a kept-alive connection)
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query, keep_blank_values=True)
        self._record(path, query, None, counts=False)
        if path.startswith(_RESPONSES_PREFIX):
            self._background_response(path[len(_RESPONSES_PREFIX) :])
            return
        if path.startswith(_BATCHES_PREFIX):
            self._message_batch(path[len(_BATCHES_PREFIX) :])
            return
        gemini_file = _gemini_name(path, "files", ":download")
        if gemini_file is not None:
            with self.server.provider._lock:
                data = self.server.provider._gemini_files.get(gemini_file)
            if data is None:
                self._send_json(404, _gemini.error_body(404, f"fake provider: no file {gemini_file!r}"))
            else:
                self._send_bytes(200, data)
            return
        gemini_batch = self._gemini_batch_of(path)
        if gemini_batch is not None:  # (OpenAI's batches share `/v1/batches/{id}`: the name decides)
            self._send_json(200, gemini_batch)
            return
        if path.startswith(("/v1/files/", "/v1/batches/")):
            self._openai_batch_get(path)
            return
        self._admin(path, query)

    def do_POST(self) -> None:
        self._body_delay_ms = 0.0
        url = urlsplit(self.path)
        path, query = _azure_path(url.path), parse_qs(url.query, keep_blank_values=True)
        raw = self._read_body()
        if path == "/v1/files":
            self._record(path, query, None, counts=False)
            self._upload_file(raw)
            return
        if path == "/v1/images/edits":  # (multipart: the text fields, the images left out)
            fields = _openai_batches.form_fields(self.headers.get("Content-Type", ""), raw)
            form: dict[str, Any] = {name: value.decode() for name, (value, upload) in fields.items() if not upload}
            form["stream"] = form.get("stream") == "true"
            self._record(path, query, form, counts=True)
            self._serve_llm(path, _openai.images, form)
            return
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            self._record(path, query, None, counts=False)
            self._send_error_for(path, 400, "fake provider: request body is not JSON")
            return
        gemini = _gemini_route(path)
        if gemini is not None and gemini[1] == "batchGenerateContent":
            self._record(path, query, body, counts=False)
            self._create_gemini_batch(gemini[0], body if isinstance(body, dict) else {})
            return
        route = _OPENAI_ROUTES.get(path)
        if path == "/v1/messages":
            route = _anthropic.messages
        elif gemini is not None:
            model, method = gemini

            def route(b: dict[str, Any], c: Controls, now: float) -> Served:
                if method == "batchEmbedContents":
                    return _gemini.embed(model, b, c, now)
                return _gemini.generate(model, b, c, now, method == "streamGenerateContent")

        self._record(path, query, body, counts=route is not None)
        if path == "/v1/messages/batches" and isinstance(body, dict):
            self._create_message_batch(body)
            return
        if path == "/v1/batches" and isinstance(body, dict):
            self._create_openai_batch(body)
            return
        if path == "/v1/messages/count_tokens" and isinstance(body, dict):
            self._send_json(200, _anthropic.count_tokens(body))
            return
        if route is None or not isinstance(body, dict):
            status = 404 if route is None else 400
            self._send_error_for(path, status, f"fake provider: no route for POST {path}")
            return
        self._serve_llm(path, route, body)

    def do_DELETE(self) -> None:
        self._send_error_for(self.path, 405, "fake provider: method not allowed")

    do_PUT = do_PATCH = do_DELETE

    # --- LLM calls -------------------------------------------------------------------------------

    def _serve_llm(self, path: str, route: Handler, body: dict[str, Any]) -> None:
        controls = self._request_controls(path)
        if controls is None:
            return
        if controls.latency_ms:
            time.sleep(controls.latency_ms / 1000)
        self._body_delay_ms = controls.body_delay_ms
        if controls.error is not None:
            self._send_error_for(
                path, controls.error, f"fake provider error {controls.error}", controls.retry_after
            )
            return
        if controls.malformed == "json":
            self._send_bytes(200, _MALFORMED_BODY)
            return
        served = route(body, controls, controls.timestamp or time.time())
        if served.body is not None and path == "/v1/responses" and body.get("background") is True:
            self._send_json(200, self.server.provider._queue_background(served.body, controls.background_polls))
            self.server.provider._served(served.record)
            return
        if served.stream is None:
            self._send_json(200, served.body, served.headers)
            self.server.provider._served(served.record)
            return
        if self._stream(served.stream, controls):
            self.server.provider._served(served.record)

    def _stream(self, plan: StreamPlan, controls: Controls) -> bool:
        """Write the stream; True when it went out complete and well-formed (so it is billable)."""
        self._controls = controls
        self.send_response(200)
        self.send_header("Content-Type", controls.stream_content_type)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        total = sum(1 for frame in plan.frames if frame.content)
        # A drop always happens when asked: at the latest right after the last content frame.
        limit = None if controls.drop_after is None else min(controls.drop_after, total)
        sent_content = 0
        garbage_pending = controls.malformed == "sse"
        try:
            if limit == 0 and total == 0:
                self._drop()
                return False
            if garbage_pending and total == 0:
                self._chunk(plan.garbage)
                garbage_pending = False
            for frame in plan.frames:
                if frame.content and limit is not None and sent_content >= limit:
                    self._drop()
                    return False
                self._chunk(frame.data)
                if frame.content:
                    sent_content += 1
                    if garbage_pending:
                        self._chunk(plan.garbage)
                        garbage_pending = False
                    if limit is not None and sent_content >= limit:
                        self._drop()
                        return False
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:  # the client went away mid-stream
            self.close_connection = True
            return False
        return controls.malformed is None

    def _chunk(self, data: bytes) -> None:
        controls = self._controls
        if controls is not None and controls.crlf:
            data = data.replace(b"\n", b"\r\n")
        size = controls.write_bytes if controls is not None and controls.write_bytes else len(data)
        for start in range(0, len(data), size):
            piece = data[start : start + size]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.flush()
            if size < len(data):
                time.sleep(0.001)  # so the client reads the pieces apart: events arrive split

    def _drop(self) -> None:
        """Cut the connection with the chunked body unfinished, as a crashed upstream would."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # --- admin reports ---------------------------------------------------------------------------

    def _bearer(self) -> str:
        auth = self.headers.get("Authorization") or ""
        return auth[len("Bearer ") :].strip() if auth.startswith("Bearer ") else ""

    def _request_controls(self, path: str) -> Controls | None:
        """The request's `x-fake-*` controls, or None once a 400 naming the bad one was sent."""
        try:
            return parse_controls({k.lower(): v for k, v in self.headers.items()})
        except ControlError as err:
            self._send_error_for(path, 400, f"fake provider: {err}")
            return None

    def _create_message_batch(self, body: dict[str, Any]) -> None:
        controls = self._request_controls("/v1/messages/batches")
        if controls is None:
            return
        batch_id = new_id("msgbatch_")
        url = f"{self.server.provider.base_url}{_BATCHES_PREFIX}{batch_id}/results"
        now = controls.timestamp or time.time()
        batch, results, records = _anthropic.message_batch(body, controls, now, batch_id, url)
        provider = self.server.provider
        with provider._lock:
            provider._batches[batch_id] = (batch, results)
        for record in records:
            provider._served(record)
        self._send_json(200, batch)

    def _create_gemini_batch(self, model: str, body: dict[str, Any]) -> None:
        path = f"/v1beta/models/{model}:batchGenerateContent"
        controls = self._request_controls(path)
        if controls is None:
            return
        name = f"batches/{new_id('fakebatch')}"
        to_file = self.headers.get("x-fake-batch-output")
        if to_file not in (None, "file"):
            self._send_error_for(path, 400, f"fake provider: x-fake-batch-output must be 'file', not {to_file!r}")
            return
        output_file = f"files/{new_id('batchout')}" if to_file else None
        now = controls.timestamp or time.time()
        created, done, records, lines = _gemini.batch(model, body, controls, now, name, output_file)
        provider = self.server.provider
        with provider._lock:
            provider._gemini_batches[name] = done
            if output_file is not None:
                provider._gemini_files[output_file] = lines
        for record in records:
            provider._served(record)
        self._send_json(200, created)

    def _gemini_batch_of(self, path: str) -> dict[str, Any] | None:
        """The Batch Mode job `GET /{version}/batches/{id}` names (done, its responses inlined), or
        None when the path names no Gemini job made here."""
        name = _gemini_name(path, "batches")
        if name is None:
            return None
        with self.server.provider._lock:
            return self.server.provider._gemini_batches.get(name)

    def _message_batch(self, rest: str) -> None:
        """`GET /v1/messages/batches/{id}` and `.../{id}/results` (JSON lines)."""
        batch_id, _, tail = rest.partition("/")
        with self.server.provider._lock:
            found = self.server.provider._batches.get(batch_id)
        if found is None or tail not in ("", "results"):
            self._send_error_for("/v1/messages", 404, f"fake provider: no message batch {batch_id!r}")
            return
        batch, results = found
        if tail == "results":
            self._send_bytes(200, results)
        else:
            self._send_json(200, batch)

    def _upload_file(self, raw: bytes) -> None:
        purpose, data, filename = _openai_batches.uploaded_file(self.headers.get("Content-Type", ""), raw)
        file = _openai_batches.file_object(new_id("file-"), data, filename, purpose, time.time())
        provider = self.server.provider
        with provider._lock:
            provider._files[file["id"]] = (file, data)
        self._send_json(200, file)

    def _create_openai_batch(self, body: dict[str, Any]) -> None:
        controls = self._request_controls("/v1/batches")
        if controls is None:
            return
        provider = self.server.provider
        with provider._lock:
            found = provider._files.get(str(body.get("input_file_id")))
        if found is None:
            self._send_error_for("/v1/batches", 404, "fake provider: no such input file")
            return
        now = controls.timestamp or time.time()
        batch, output, records = _openai_batches.run_batch(body, found[1], _OPENAI_ROUTES, controls, now)
        output_file = _openai_batches.file_object(new_id("file-"), output, "batch_output.jsonl", "batch_output", now)
        batch["output_file_id"] = output_file["id"]
        with provider._lock:
            provider._files[output_file["id"]] = (output_file, output)
            provider._openai_batches[batch["id"]] = batch
        for record in records:
            provider._served(record)
        self._send_json(200, batch)

    def _openai_batch_get(self, path: str) -> None:
        """`GET /v1/batches/{id}`, `/v1/files/{id}` and `/v1/files/{id}/content`."""
        provider = self.server.provider
        _v1, kind, item_id, *rest = path.strip("/").split("/")
        tail = "/".join(rest)
        with provider._lock:
            batch = provider._openai_batches.get(item_id) if kind == "batches" and not tail else None
            file = provider._files.get(item_id) if kind == "files" and tail in ("", "content") else None
        if batch is not None:
            self._send_json(200, batch)
        elif file is not None and tail:
            self._send_bytes(200, file[1])
        elif file is not None:
            self._send_json(200, file[0])
        else:
            self._send_error_for(path, 404, f"fake provider: nothing at {path}")

    def _background_response(self, response_id: str) -> None:
        """GET /v1/responses/{id}: a background response, still in progress for as many retrieves as
        its create asked (x-fake-background-polls), then complete with its usage."""
        found = self.server.provider._poll_background(response_id)
        if found is None:
            self._send_error_for(_RESPONSES_PREFIX, 404, f"fake provider: no response {response_id!r}")
            return
        self._send_json(200, found)

    def _admin(self, path: str, query: dict[str, list[str]]) -> None:
        if path.startswith(_ADMIN_OPENAI) and not self._bearer():
            self._send_error_for(path, 401, "fake provider: missing admin API key (Authorization: Bearer)")
            return
        # anthropic 2.x SDKs send the key as a Bearer token; raw clients use x-api-key.
        if path.startswith(_ADMIN_ANTHROPIC) and not (
            (self.headers.get("x-api-key") or "").strip() or self._bearer()
        ):
            self._send_error_for(path, 401, "fake provider: missing admin API key (x-api-key)")
            return
        provider = self.server.provider
        override = provider._report_override(path)
        if override is not None:
            self._send_json(200, override)
            return
        builders: dict[str, Callable[[list[UsageRecord], dict[str, list[str]], float], dict[str, Any]]] = {
            "/v1/organization/usage/completions": lambda r, q, n: _reports.openai_usage(
                "completions", r, q, n
            ),
            "/v1/organization/usage/embeddings": lambda r, q, n: _reports.openai_usage("embeddings", r, q, n),
            "/v1/organization/costs": _reports.openai_costs,
            "/v1/organizations/usage_report/messages": _reports.anthropic_usage,
            "/v1/organizations/cost_report": _reports.anthropic_costs,
        }
        build = builders.get(path)
        if build is None:
            self._send_error_for(path, 404, f"fake provider: no route for GET {path}")
            return
        try:
            report = build(provider._usage_records(), query, time.time())
        except _reports.ReportError as err:
            self._send_error_for(path, 400, f"fake provider: {err}")
            return
        self._send_json(200, report)


def _in_progress(final: dict[str, Any], status: str) -> dict[str, Any]:
    return {**final, "status": status, "output": [], "usage": None, "completed_at": None}


class FakeProvider:
    """A local OpenAI/Anthropic/Gemini look-alike for tests and the offline demo (see package docs)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._count = 0
        self._records: list[UsageRecord] = []
        self._reports: dict[str, dict[str, Any]] = {}
        # background responses by id: [the complete response, retrieves left that answer in progress]
        self._background: dict[str, list[Any]] = {}
        # message batches by id: (the batch object, its results as JSON lines)
        self._batches: dict[str, tuple[dict[str, Any], bytes]] = {}
        # OpenAI files by id (the file object, its bytes) and batches by id
        self._files: dict[str, tuple[dict[str, Any], bytes]] = {}
        self._openai_batches: dict[str, dict[str, Any]] = {}
        self._gemini_batches: dict[str, dict[str, Any]] = {}  # name -> the job, done
        self._gemini_files: dict[str, bytes] = {}  # name -> a batch job's responses file
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    def _queue_background(self, final: dict[str, Any], polls: int) -> dict[str, Any]:
        """Keep a background response's final form; answer the create with it queued (no output, no
        usage), as the API does."""
        with self._lock:
            self._background[str(final.get("id"))] = [final, polls]
        return _in_progress(final, "queued")

    def _poll_background(self, response_id: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._background.get(response_id)
            if entry is None:
                return None
            final, polls = entry
            if polls <= 0:
                return dict(final)
            entry[1] = polls - 1
        return _in_progress(final, "in_progress")

    def start(self) -> FakeProvider:
        if self._server is not None:
            return self
        server = _Server((self._host, self._port), self)
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-provider", daemon=True
        )
        thread.start()
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- addresses -------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeProvider is not started; call start() or use it as a context manager")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return self.base_url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.base_url

    @property
    def gemini_base_url(self) -> str:
        return self.base_url

    # --- what was served -------------------------------------------------------------------------

    @property
    def request_count(self) -> int:
        with self._lock:
            return self._count

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        """Forget requests, served usage and report overrides (the server keeps running)."""
        with self._lock:
            self._requests.clear()
            self._count = 0
            self._records.clear()
            self._reports.clear()

    def set_report(self, path: str, body: dict[str, Any]) -> None:
        """Answer GET `path` (query ignored, admin key still required) with `body` verbatim."""
        with self._lock:
            self._reports[urlsplit(path).path] = body

    # --- called from handler threads -------------------------------------------------------------

    def _record(self, request: RecordedRequest, counts: bool) -> None:
        with self._lock:
            self._requests.append(request)
            if counts:
                self._count += 1

    def _served(self, record: UsageRecord) -> None:
        with self._lock:
            self._records.append(record)

    def _usage_records(self) -> list[UsageRecord]:
        with self._lock:
            return list(self._records)

    def _report_override(self, path: str) -> dict[str, Any] | None:
        with self._lock:
            return self._reports.get(path)
