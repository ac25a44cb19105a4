"""Shared helpers for the pricing tests: the bundled book and a writer for overrides files."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest

from genai_meter.pricing import PriceBook


def at(day: str, hour: int = 12) -> float:
    """Unix time of `day` (YYYY-MM-DD) at `hour`:00 UTC."""
    year, month, dom = (int(part) for part in day.split("-"))
    return datetime(year, month, dom, hour, tzinfo=timezone.utc).timestamp()


@pytest.fixture(scope="session")
def book() -> PriceBook:
    return PriceBook.load()


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    def _write(text: str, name: str = "prices.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write
