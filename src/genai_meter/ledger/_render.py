"""Printing rows as an aligned table (terminals), JSON or CSV, and a dependency-free progress line.

Rows are dicts with the columns in the given order. Money columns (`*_usd`) print with enough
decimals for sub-cent calls in the table; JSON and CSV carry the full value.

Ledger text comes from apps and providers (user ids, tenants, models), so it is made harmless where
it is printed: in the table, control characters are shown escaped (a newline in a user id would
otherwise break the layout); in CSV, a text cell that a spreadsheet would run as a formula (starting
with = + - @, a tab or a carriage return) gets a leading single quote (OWASP's advice for CSV
injection), and a row with a carriage return in a cell is quoted whole (lines end in LF, and the csv
module quotes only the line end's characters, so such a cell would split the row for a reader and
could start a new one with a formula). Numbers are left alone, and JSON output is never altered.
"""

from __future__ import annotations

import csv
import json
import re
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


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _escape_control(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


def _cell(name: str, value: Any) -> str:
    if value is None:
        return NONE_TEXT if name in _KEY_COLUMNS else "-"
    if isinstance(value, float) and name.endswith("_usd"):
        return f"${value:,.6f}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return _CONTROL.sub(_escape_control, str(value))


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
        writer = _CsvWriter(out)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([row.get(c) for c in columns])
    else:
        write_table(rows, columns, out)


def stream_rows(rows: Iterable[dict[str, Any]], columns: Sequence[str], fmt: str, out: TextIO) -> int:
    """Write rows one at a time (export): csv, jsonl, or a JSON array opened and closed around them."""
    count = 0
    if fmt == "csv":
        writer = _CsvWriter(out)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([row.get(c) for c in columns])
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


class _CsvWriter:
    """CSV rows with LF line ends: None empty, JSON for nested values, text that cannot run as a
    formula, and every cell quoted in a row where one holds a CR (see the module docstring)."""

    def __init__(self, out: TextIO) -> None:
        self._minimal = csv.writer(out, lineterminator="\n")
        self._all = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)

    def writerow(self, values: Iterable[Any]) -> None:
        cells: list[Any] = []
        carriage_return = False
        for value in values:
            if value is None:
                value = ""
            elif isinstance(value, dict | list):
                value = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
            if isinstance(value, str):
                if value.startswith(_FORMULA_STARTS):
                    value = "'" + value
                carriage_return = carriage_return or "\r" in value
            cells.append(value)
        (self._all if carriage_return else self._minimal).writerow(cells)


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
