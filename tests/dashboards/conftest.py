"""Fixtures for the dashboards / rules / collector-config tests.

Prometheus, promtool and amtool come from Debian's packages. Outside CI a missing binary skips the
test; in CI (CI=true) it fails, so a broken image cannot pass by skipping everything.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS_DIR = REPO / "dashboards"
COLLECTOR_DIR = REPO / "collector-config"
DOCS_DIR = REPO / "docs"


def need_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"`{name}` not on PATH (apt-get install prometheus prometheus-alertmanager)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def binary() -> Callable[[str], str]:
    return need_binary
