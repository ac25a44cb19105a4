"""Printing rows as an aligned table (terminals), JSON or CSV, and a dependency-free progress line.

Rows are dicts with the columns in the given order. Money columns (`*_usd`) print with enough
decimals for sub-cent calls in the table; JSON and CSV carry the full value.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

FORMATS = ("table", "json", "csv")
NONE_TEXT = "(none)"
# Columns that name a group: an unset value there is "(none)" (also the filter value that finds it).
_KEY_COLUMNS = frozenset(
    {"user", "tenant", "feature", "model", "provider", "operation", "outcome", "request_model", "value"}
)


def _cell(name: str, value: Any) -> str:
    if value is None:
        return NONE_TEXT if name in _KEY_COLUMNS else "-"
    if isinstance(value, float) and name.endswith("_usd"):
        return f"${value:,.6f}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def write_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], out: TextIO) -> None:
    cells = [[_cell(c, row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    numeric = [all(isinstance(row.get(c), int | float) or row.get(c) is None for row in rows) for c in columns]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    out.write(line(list(columns)) + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for r in cells:
        out.write(line(r) + "\n")


def write_rows(rows: Sequence[dict[str, Any]], columns: Sequence[str], fmt: str, out: TextIO) -> None:
    if fmt == "json":
        json.dump([{c: row.get(c) for c in columns} for row in rows], out, indent=2, default=str)
        out.write("\n")
    elif fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    else:
        write_table(rows, columns, out)


def stream_rows(rows: Iterable[dict[str, Any]], columns: Sequence[str], fmt: str, out: TextIO) -> int:
    """Write rows one at a time (export): csv, jsonl, or a JSON array opened and closed around them."""
    count = 0
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_csv_value(row.get(c)) for c in columns])
            count += 1
    elif fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(row, separators=(",", ":"), ensure_ascii=False, default=str) + "\n")
            count += 1
    else:
        out.write("[")
        for row in rows:
            out.write(("\n" if count == 0 else ",\n") + json.dumps(row, ensure_ascii=False, default=str))
            count += 1
        out.write("\n]\n" if count else "]\n")
    return count


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return value


class Progress:
    """`done/total (pct)` rewritten in place on stderr, at most ten times a second; silent off a TTY."""

    def __init__(self, total: int | None, stream: TextIO | None = None, label: str = "exported") -> None:
        self._stream = stream or sys.stderr
        self._enabled = bool(getattr(self._stream, "isatty", lambda: False)())
        self._total = total
        self._label = label
        self._last = 0.0
        self.done = 0

    def step(self, n: int = 1) -> None:
        self.done += n
        if self._enabled and (now := time.monotonic()) - self._last >= 0.1:
            self._last = now
            self._draw()

    def _draw(self) -> None:
        if self._total:
            pct = min(100.0, 100.0 * self.done / self._total)
            width = 30
            filled = int(width * pct / 100)
            bar = "#" * filled + "." * (width - filled)
            text = f"\r[{bar}] {self.done:,}/{self._total:,} {self._label} ({pct:.0f}%)"
        else:
            text = f"\r{self.done:,} {self._label}"
        self._stream.write(text)
        self._stream.flush()

    def finish(self) -> None:
        if self._enabled:
            self._draw()
            self._stream.write("\n")
            self._stream.flush()
