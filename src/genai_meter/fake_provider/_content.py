"""Deterministic answer text and default token counts shared by every provider dialect.

Tests assert exact token figures, so the default usage must follow a rule a test author can compute
by hand: prompt tokens = ceil(characters of prompt text / 4), completion tokens = number of content
chunks. Structured-output requests get a minimal JSON instance of their schema so the SDKs' `parse`
helpers validate it without the test having to craft content.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ._controls import Controls

# Keys under which prompt text lives in all four dialects (chat/responses/anthropic/gemini).
_TEXT_KEYS = ("content", "text", "parts", "input", "instructions", "prompt", "system", "messages")


def text_chars(value: Any) -> int:
    """Characters of prompt text in a request fragment; non-text parts (images, ids, roles) count 0."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(text_chars(item) for item in value)
    if isinstance(value, dict):
        return sum(text_chars(value[key]) for key in _TEXT_KEYS if key in value)
    return 0


def approx_tokens(chars: int) -> int:
    return -(-chars // 4)


def prompt_tokens(*fragments: Any) -> int:
    return approx_tokens(sum(text_chars(fragment) for fragment in fragments))


def default_pieces(count: int) -> list[str]:
    return [f"chunk{i} " for i in range(count)]


def split_pieces(text: str, count: int) -> list[str]:
    """`text` cut into exactly `count` slices (some may be empty) so chunk counts stay predictable."""
    if count <= 0:
        return []
    size = len(text)
    return [text[i * size // count : (i + 1) * size // count] for i in range(count)]


def answer_pieces(controls: Controls, schema: Any | None) -> list[str]:
    """The streamed pieces of the answer; their concatenation is the non-stream content."""
    if controls.content is not None:
        return split_pieces(controls.content, controls.chunks)
    if schema is not None:
        return split_pieces(json.dumps(schema_instance(schema)), controls.chunks)
    return default_pieces(controls.chunks)


def fill_total(usage: dict[str, Any], total_key: str, parts: Iterable[str]) -> dict[str, Any]:
    """Copy of `usage` with `total_key` added when absent and every present part is an int."""
    out = dict(usage)
    if total_key in out:
        return out
    present = [out[key] for key in parts if key in out]
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        out[total_key] = sum(present)
    return out


_FORMAT_EXAMPLES = {
    "date-time": "1970-01-01T00:00:00Z",
    "date": "1970-01-01",
    "time": "00:00:00",
    "uuid": "00000000-0000-0000-0000-000000000000",
    "email": "user@example.com",
    "uri": "https://example.com/",
}


def schema_instance(schema: Any, root: Any | None = None, depth: int = 0) -> Any:
    """The smallest JSON value that satisfies common JSON Schema (pydantic/OpenAPI) constraints."""
    root = schema if root is None else root
    if not isinstance(schema, dict) or depth > 32:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        return schema_instance(target, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return schema_instance(options[0], root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    kind = kind.lower() if isinstance(kind, str) else ("object" if "properties" in schema else None)
    if kind == "object":
        props = schema.get("properties") or {}
        return {name: schema_instance(sub, root, depth + 1) for name, sub in props.items()}
    if kind == "array":
        item = schema_instance(schema.get("items"), root, depth + 1)
        return [item] * int(schema.get("minItems") or 0)
    if kind == "string":
        example = _FORMAT_EXAMPLES.get(str(schema.get("format")))
        return example if example is not None else "x" * int(schema.get("minLength") or 0)
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        value = max(0, int(low) + (1 if "exclusiveMinimum" in schema else 0)) if low is not None else 0
        return value if kind == "integer" else float(value)
    if kind == "boolean":
        return False
    return None
