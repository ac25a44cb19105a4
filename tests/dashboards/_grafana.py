"""Reads the generated Grafana JSON the way Grafana would: panels, targets and variables."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Grafana's built-in interval variables, pinned to values that cover the test's short history.
BUILTINS = {"__range": "5m", "__rate_interval": "1m", "__interval": "15s"}


@dataclass(frozen=True)
class PanelTarget:
    dashboard: str
    panel: str
    ref: str
    expr: str

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref}: {self.expr}"


def load(directory: Path) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))}


def panels(model: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in model["panels"]:
        yield panel
        yield from panel.get("panels", [])


def targets(dashboards: Mapping[str, Mapping[str, Any]]) -> list[PanelTarget]:
    return [
        PanelTarget(name, panel["title"], target["refId"], target["expr"])
        for name, model in dashboards.items()
        for panel in panels(model)
        for target in panel.get("targets", [])
    ]


def variables(model: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(model["templating"]["list"])


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Replace `$name` / `${name}` with Grafana's rendering; unknown variables are an error."""
    merged = {**BUILTINS, **values}

    def repl(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in merged:
            raise KeyError(f"unknown Grafana variable ${name} in {expr}")
        return merged[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", repl, expr)
