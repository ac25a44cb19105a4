"""What a provider dialect hands back to the HTTP layer: a JSON body or a planned SSE stream.

Dialects only build data; the HTTP layer alone decides how to misbehave (drop, garbage, delay), so
every fault works the same way for every provider.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def sse(data: Any, event: str | None = None) -> bytes:
    """One SSE frame; `data` that is already a str is sent as is (for `[DONE]` and garbage)."""
    payload = data if isinstance(data, str) else dumps(data)
    head = f"event: {event}\n" if event is not None else ""
    return f"{head}data: {payload}\n\n".encode()


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


@dataclass(frozen=True)
class Frame:
    data: bytes
    content: bool = False  # counts toward x-fake-drop-after and places x-fake-malformed: sse


@dataclass(frozen=True)
class StreamPlan:
    frames: list[Frame]
    garbage: bytes  # a frame the SDK will route to its JSON parser and fail on


@dataclass(frozen=True)
class UsageRecord:
    """One served call as the admin usage/cost reports will count it."""

    api: str  # "openai.completions" | "openai.embeddings" | "anthropic.messages" | "gemini"
    model: str
    usage: dict[str, Any]
    at: float


@dataclass(frozen=True)
class Served:
    record: UsageRecord
    body: dict[str, Any] | None = None
    stream: StreamPlan | None = None
    headers: dict[str, str] = field(default_factory=dict)
