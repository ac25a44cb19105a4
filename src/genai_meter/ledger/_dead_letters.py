"""The dead-letter file: what the ledger could not store, kept beside the spool instead of lost.

A batch the database refuses for its contents is retried row by row; a row refused on its own
would otherwise be retried for ever and hold back every row behind it, so it is written here and
the writer carries on. Spool lines that hold no usable row (torn by a crash, not UTF-8) land here
too. genai-meter never reads this file back: it is for a person to inspect, and to re-insert rows
from once the cause is fixed.

One JSON object a line:
`{"at": <Unix time>, "error": "<exception type>", "message": "<its text>", "row": {<column>: <value>}}`,
or with `"line": "<the spool line>"` instead of `"row"` for a spool line that held no row.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ._files import append_durably
from ._rows import COLUMNS, Row, storable_text

_MAX_MESSAGE_CHARS = 1000


def dead_letter_path(spool_path: Path) -> Path:
    """`<spool name without suffix>.dead-letters.jsonl`, in the spool's folder."""
    return spool_path.with_name(f"{spool_path.stem}.dead-letters.jsonl")


class DeadLetters:
    """Appends what could not be stored, durably and under the same lock discipline as the spool."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def add_row(self, row: Row, error: BaseException) -> None:
        self._add(error, "row", dict(zip(COLUMNS, row, strict=True)))

    def add_line(self, line: str, error: BaseException) -> None:
        self._add(error, "line", storable_text(line))

    def _add(self, error: BaseException, kind: str, what: Any) -> None:
        entry = {
            "at": time.time(),
            "error": type(error).__name__,
            "message": (storable_text(error) or "")[:_MAX_MESSAGE_CHARS],
            kind: what,
        }
        append_durably(self.path, json.dumps(entry, separators=(",", ":"), ensure_ascii=False) + "\n")
