"""The spool: a local JSON-lines file that holds rows while the database is slow or down.

Rows go here instead of being dropped or blocking the app, and are replayed (idempotently, so a
replay cut short and repeated doubles nothing) when the database answers again. Every append and
replay holds an exclusive `flock` on the file, so several processes may share one spool.
A torn last line (a crash mid-append) is skipped and counted, never fatal.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ._rows import COLUMNS, Row

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: one process per spool file
    fcntl = None  # type: ignore[assignment]


class Spool:
    """Append rows; replay them all through a callback that writes to the database."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.bad_lines = 0

    @contextmanager
    def _locked(self, mode: str) -> Iterator[object]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, mode, encoding="utf-8") as handle:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield handle
            finally:
                if fcntl is not None:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def append(self, rows: Sequence[Row]) -> None:
        """Append rows durably (fsync): after this returns the rows survive a crash."""
        if not rows:
            return
        text = "".join(json.dumps(row, separators=(",", ":"), ensure_ascii=False) + "\n" for row in rows)
        with self._locked("a") as handle:
            handle.write(text)  # type: ignore[attr-defined]
            handle.flush()  # type: ignore[attr-defined]
            os.fsync(handle.fileno())  # type: ignore[attr-defined]

    def pending(self) -> bool:
        """Whether the spool holds anything (cheap: one stat)."""
        try:
            return self.path.stat().st_size > 0
        except OSError:
            return False

    def replay(self, write: Callable[[Sequence[Row]], object], batch_size: int = 1000) -> int:
        """Write every spooled row through `write`, then empty the file; returns rows replayed.

        If `write` raises, the file is left whole (rows already written are skipped next time by
        the database's idempotency) and the exception propagates.
        """
        if not self.pending():
            return 0
        replayed = 0
        with self._locked("r+") as handle:
            batch: list[Row] = []
            for line in handle:  # type: ignore[attr-defined]
                row = self._parse(line)
                if row is None:
                    continue
                batch.append(row)
                if len(batch) >= batch_size:
                    write(batch)
                    replayed += len(batch)
                    batch = []
            if batch:
                write(batch)
                replayed += len(batch)
            handle.seek(0)  # type: ignore[attr-defined]
            handle.truncate()  # type: ignore[attr-defined]
            handle.flush()  # type: ignore[attr-defined]
            os.fsync(handle.fileno())  # type: ignore[attr-defined]
        return replayed

    def _parse(self, line: str) -> Row | None:
        if not line.strip():
            return None
        try:
            values = json.loads(line)
        except ValueError:
            self.bad_lines += 1
            return None
        if not isinstance(values, list) or len(values) != len(COLUMNS):
            self.bad_lines += 1
            return None
        return tuple(values)
