"""Per-request knobs a test sets through `x-fake-*` request headers.

Headers are the only channel every SDK lets a caller touch per call (`extra_headers=` in openai and
anthropic, `HttpOptions(headers=...)` in google-genai), so the fake takes all its instructions there
instead of from a side channel that would need a second client.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

DEFAULT_CHUNKS = 3


class ControlError(ValueError):
    """A malformed `x-fake-*` header: answered with a 400 that names the header."""


@dataclass(frozen=True)
class Controls:
    usage: dict[str, Any] | None = None
    error: int | None = None
    retry_after: str = "0"
    chunks: int = DEFAULT_CHUNKS
    model: str | None = None
    drop_after: int | None = None
    malformed: Literal["sse", "json"] | None = None
    cost: float | None = None
    latency_ms: float = 0.0
    body_delay_ms: float = 0.0  # whole answers: the headers at once, the body this much later
    content: str | None = None
    timestamp: float | None = None
    write_bytes: int | None = None  # stream bodies written in pieces of this many bytes
    crlf: bool = False  # SSE lines end with CR LF instead of LF
    stream_content_type: str = "text/event-stream"
    # chat streams: where the usage goes (`chunk`: OpenAI's own `choices: []` chunk; `finish`: on the
    # finish chunk, as some compatible servers send it; `x_groq`: Groq's `x_groq.usage` on the finish
    # chunk, sent whether or not `include_usage` was asked, plus the usage chunk when it was)
    stream_usage: Literal["chunk", "finish", "x_groq"] = "chunk"
    # OpenAI dialect: each choice's finish reason (`x-fake-finish-reason`, comma-separated, the last
    # one repeated for further choices); top-level fields merged into every OpenAI response body and
    # stream chunk and into a whole Anthropic message (`x-fake-fields`, a JSON object, e.g.
    # `{"model": 5}`)
    finish_reasons: tuple[str, ...] = ()
    fields: dict[str, Any] | None = None
    # `x-fake-no-usage`: a whole (non-streamed) OpenAI, Anthropic or Gemini response whose usage is `null`
    # or left out altogether, as some proxies and compatible servers answer
    no_usage: Literal["null", "absent"] | None = None
    # Responses API `background: true`: how many retrieves answer `in_progress` before the complete
    # response (`x-fake-background-polls`)
    background_polls: int = 0


def _int(headers: Mapping[str, str], name: str, *, low: int, high: int) -> int | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        raise ControlError(f"header {name}: expected an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ControlError(f"header {name}: {value} is outside {low}..{high}")
    return value


def _float(headers: Mapping[str, str], name: str) -> float | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        return float(raw.strip())
    except ValueError:
        raise ControlError(f"header {name}: expected a number, got {raw!r}") from None


def _timestamp(raw: str | None) -> float | None:
    if raw is None:
        return None
    text = raw.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ControlError(f"header x-fake-time: expected Unix seconds or RFC 3339, got {raw!r}") from None


def parse_controls(headers: Mapping[str, str]) -> Controls:
    """Read the knobs from lower-cased request headers; raise ControlError naming a bad header."""
    malformed = headers.get("x-fake-malformed")
    if malformed is not None and malformed not in ("sse", "json"):
        raise ControlError(f"header x-fake-malformed: expected 'sse' or 'json', got {malformed!r}")

    retry_after = headers.get("x-fake-retry-after", "0").strip()
    try:
        if float(retry_after) < 0:
            raise ValueError
    except ValueError:
        raise ControlError(f"header x-fake-retry-after: expected seconds >= 0, got {retry_after!r}") from None

    chunks = _int(headers, "x-fake-chunks", low=0, high=10_000)
    latency = _float(headers, "x-fake-latency-ms")
    return Controls(
        usage=_json_object(headers, "x-fake-usage"),
        error=_int(headers, "x-fake-error", low=400, high=599),
        retry_after=retry_after,
        chunks=DEFAULT_CHUNKS if chunks is None else chunks,
        model=headers.get("x-fake-model"),
        drop_after=_int(headers, "x-fake-drop-after", low=0, high=10_000),
        malformed="sse" if malformed == "sse" else "json" if malformed == "json" else None,
        cost=_float(headers, "x-fake-cost"),
        latency_ms=max(0.0, latency or 0.0),
        body_delay_ms=max(0.0, _float(headers, "x-fake-body-delay-ms") or 0.0),
        content=headers.get("x-fake-content"),
        timestamp=_timestamp(headers.get("x-fake-time")),
        write_bytes=_int(headers, "x-fake-write-bytes", low=1, high=1_000_000),
        crlf=_sse_newline(headers.get("x-fake-sse-newline")),
        stream_content_type=headers.get("x-fake-stream-content-type") or "text/event-stream",
        stream_usage=_stream_usage(headers.get("x-fake-stream-usage")),
        finish_reasons=tuple(r.strip() for r in headers.get("x-fake-finish-reason", "").split(",") if r.strip()),
        fields=_json_object(headers, "x-fake-fields"),
        no_usage=_no_usage(headers.get("x-fake-no-usage")),
        background_polls=_int(headers, "x-fake-background-polls", low=0, high=10_000) or 0,
    )


def _no_usage(raw: str | None) -> Literal["null", "absent"] | None:
    if raw is None:
        return None
    value = raw.strip().lower()
    if value == "null":
        return "null"
    if value == "absent":
        return "absent"
    raise ControlError(f"header x-fake-no-usage: expected 'null' or 'absent', got {raw!r}")


def strip_usage(body: dict[str, Any], key: str, controls: Controls) -> dict[str, Any]:
    """`body` with its usage field (`key`) made null or left out, as `x-fake-no-usage` asks."""
    if controls.no_usage == "null":
        return {**body, key: None}
    if controls.no_usage == "absent":
        return {name: value for name, value in body.items() if name != key}
    return body


def _json_object(headers: Mapping[str, str], name: str) -> dict[str, Any] | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise ControlError(f"header {name}: not JSON: {raw!r}") from None
    if not isinstance(parsed, dict):
        raise ControlError(f"header {name}: expected a JSON object")
    return parsed


def _stream_usage(raw: str | None) -> Literal["chunk", "finish", "x_groq"]:
    value = (raw or "chunk").strip().lower()
    if value == "chunk":
        return "chunk"
    if value == "finish":
        return "finish"
    if value == "x_groq":
        return "x_groq"
    raise ControlError(f"header x-fake-stream-usage: expected chunk, finish or x_groq, got {raw!r}")


def _sse_newline(raw: str | None) -> bool:
    if raw is None or raw.strip().lower() == "lf":
        return False
    if raw.strip().lower() == "crlf":
        return True
    raise ControlError(f"header x-fake-sse-newline: expected 'lf' or 'crlf', got {raw!r}")


def shaped(payload: dict[str, Any], controls: Controls) -> dict[str, Any]:
    """A response body or stream chunk with the fields `x-fake-fields` sets."""
    return {**payload, **controls.fields} if controls.fields else payload
