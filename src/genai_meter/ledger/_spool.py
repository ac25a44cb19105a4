"""The spool: a local JSON-lines file that holds rows while the database is slow or down.

Rows go here instead of being dropped or blocking the app, and are replayed (idempotently, so a
replay cut short and repeated doubles nothing) when the database answers again. Every append and
replay holds an exclusive `flock` on the file, so several processes may share one spool.

A replay never stops at a line it cannot use: a line that is not a storable row (torn by a crash
mid-append, not UTF-8, values no column can take) is handed to `reject` (the dead-letter file) and
the replay carries on. When the database fails part-way, the lines already handled are cut from
the file, so nothing is written or rejected twice on the next replay.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from ._files import append_durably, locked, sync
from ._rows import Row, storable

_COPY_CHUNK = 1 << 20


class PartialWrite(Exception):
    """Raised by a replay's `write` when the database failed after it had handled (stored or
    dead-lettered) the first `done` rows of its batch; `error` is the database's error."""

    def __init__(self, done: int, error: BaseException) -> None:
        super().__init__(f"database failed after {done} rows: {type(error).__name__}")
        self.done = done
        self.error = error


Write = Callable[[Sequence[Row]], object]
Reject = Callable[[str, BaseException], object]


def parse_line(raw: bytes) -> Row | None:
    """The storable row a spool line holds; None for a blank line. Raises ValueError (or TypeError,
    ArithmeticError, RecursionError) for a line that holds no usable row."""
    text = raw.decode("utf-8")
    if not text.strip():
        return None
    values = json.loads(text)
    if not isinstance(values, list):
        raise ValueError("a spool line holds a JSON array of column values")
    return storable(values)


_UNUSABLE = (ValueError, TypeError, ArithmeticError, RecursionError)


class Spool:
    """Append rows; replay them all through a callback that writes to the database."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def append(self, rows: Sequence[Row]) -> None:
        """Append rows durably (fsync): after this returns the rows survive a crash."""
        if rows:
            append_durably(
                self.path, "".join(json.dumps(row, separators=(",", ":"), ensure_ascii=False) + "\n" for row in rows)
            )

    def pending(self) -> bool:
        """Whether the spool holds anything (cheap: one stat)."""
        try:
            return self.path.stat().st_size > 0
        except OSError:
            return False

    def replay(self, write: Write, batch_size: int = 1000, *, reject: Reject) -> int:
        """Write every spooled row through `write` in batches, then empty the file; returns rows replayed.

        Lines that hold no usable row go to `reject`. If `write` or `reject` raises, the lines not yet handled stay in
        the file (a `PartialWrite` says how much of its batch `write` had handled) and the
        exception propagates.
        """
        if not self.pending():
            return 0
        with locked(self.path, "r+b") as handle:
            replay = _Replay(write, reject)
            try:
                replay.run(handle, max(1, batch_size))
            except BaseException:
                _cut_before(handle, replay.unhandled)
                raise
            handle.seek(0)
            handle.truncate()
            sync(handle)
        return replay.replayed


class _Replay:
    """One replay's progress: `unhandled` is the file offset of the first line not yet handled."""

    def __init__(self, write: Write, reject: Reject) -> None:
        self._write = write
        self._reject = reject
        self._batch: list[Row] = []
        self._ends: list[int] = []  # file offset just past each batched row's line
        self.unhandled = 0
        self.replayed = 0

    def run(self, handle: BinaryIO, batch_size: int) -> None:
        position = 0
        for raw in handle:
            position += len(raw)
            try:
                row = parse_line(raw)
            except _UNUSABLE as error:
                self._flush()  # the rows before this line first, so `unhandled` can pass it
                self._reject(raw.decode("utf-8", "backslashreplace").rstrip("\r\n"), error)
                self.unhandled = position
                continue
            if row is not None:
                self._batch.append(row)
                self._ends.append(position)
                if len(self._batch) >= batch_size:
                    self._flush()
        self._flush()

    def _flush(self) -> None:
        if not self._batch:
            return
        try:
            self._write(self._batch)
        except PartialWrite as stopped:
            if stopped.done:
                self.unhandled = self._ends[stopped.done - 1]
            raise
        self.replayed += len(self._batch)
        self.unhandled = self._ends[-1]
        self._batch.clear()
        self._ends.clear()


def _cut_before(handle: BinaryIO, offset: int) -> None:
    """Remove the file's first `offset` bytes in place (the lines a failed replay had handled).

    In place, not a new file renamed over the old one: another process may be waiting for the lock
    on this very file to append to it. A crash mid-copy leaves some lines twice (and perhaps one torn
    copy, set aside on the next replay), which a replay writes once since the database is
    idempotent; it never loses a line.
    """
    if offset <= 0:
        return
    read_at, write_at = offset, 0
    while True:
        handle.seek(read_at)
        chunk = handle.read(_COPY_CHUNK)
        if not chunk:
            break
        handle.seek(write_at)
        handle.write(chunk)
        read_at += len(chunk)
        write_at += len(chunk)
    handle.truncate(write_at)
    sync(handle)
