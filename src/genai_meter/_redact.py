"""URLs as they may appear in messages and logs: without the credentials they may carry."""

from __future__ import annotations


def redact_url(url: str) -> str:
    """`url` with whatever precedes its `@` (user and password) replaced by `***`."""
    head, sep, tail = url.rpartition("@")
    if not sep:
        return url
    scheme, slashes, _credentials = head.partition("//")
    return f"{scheme}//***@{tail}" if slashes else f"***@{tail}"
