"""A test helper: what a function was called with, the function still doing its work."""

from __future__ import annotations

from typing import Any

import pytest


def first_arguments(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> list[Any]:
    """Replace `owner.name` (for the test) with a wrapper that calls it and keeps each call's first
    argument in the list returned."""
    seen: list[Any] = []
    original = getattr(owner, name)

    def recording(*args: Any, **kwargs: Any) -> Any:
        seen.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, recording)
    return seen
