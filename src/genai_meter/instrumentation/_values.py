"""Reading SDK request arguments the same way for every provider.

The SDKs fill omitted arguments with sentinels (`omit`, `NOT_GIVEN`); these readers treat anything
that is not a real value as absent. Text length is only ever counted (for estimates), never kept.
"""

from __future__ import annotations

import importlib
from typing import Any

_TEXT_KEYS = ("content", "text", "input", "arguments", "parts")


def text(value: Any) -> str | None:
    """A request argument if it is real text."""
    return value if isinstance(value, str) and value else None


def number(value: Any) -> int | None:
    """A request argument if it is a positive whole number."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def content_chars(value: Any, depth: int = 0) -> int:
    """Characters of text in messages / input / contents (dicts, lists or SDK objects)."""
    if isinstance(value, str):
        return len(value)
    if depth > 6 or value is None:
        return 0
    if isinstance(value, list | tuple):
        return sum(content_chars(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return sum(content_chars(value[key], depth + 1) for key in _TEXT_KEYS if key in value)
    return sum(content_chars(getattr(value, key, None), depth + 1) for key in ("text", "parts", "content"))


def raw_response_types(package: str) -> tuple[type[Any], ...]:
    """The raw-response classes of a Stainless-generated SDK (`with_raw_response`, streaming)."""
    found: list[type[Any]] = []
    for module_name, class_names in (
        (f"{package}._legacy_response", ("LegacyAPIResponse",)),
        (f"{package}._response", ("APIResponse", "AsyncAPIResponse")),
    ):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        found.extend(getattr(module, name) for name in class_names if hasattr(module, name))
    return tuple(found)


class RawResponses:
    """Recognises an SDK's raw responses (`with_raw_response`, `with_streaming_response`) and gives
    the object behind them; the SDK caches what `parse()` returns, so the app's own `parse()` later
    gets the same (metered) object."""

    def __init__(self, package: str) -> None:
        self.package = package
        self.types: tuple[type[Any], ...] = ()

    def load(self) -> None:
        """Find the classes (at instrument time, when the SDK is importable)."""
        self.types = raw_response_types(self.package)

    def is_raw(self, result: Any) -> bool:
        return isinstance(result, self.types)

    def parsed(self, result: Any) -> Any:
        return result.parse() if isinstance(result, self.types) else result
