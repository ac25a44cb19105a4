"""Local JSON-lines files that several processes share: the spool and the dead-letter file.

Every access holds an exclusive `flock` on the file, and appends are fsync'd and all-or-nothing,
so rows handed to one of these files survive a crash, two processes never interleave half-lines,
and a failed append leaves no part of a line behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, cast

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: one process per file
    fcntl = None  # type: ignore[assignment]


@contextmanager
def locked(path: Path, mode: str) -> Iterator[BinaryIO]:
    """The file opened in binary `mode` (its folder made if missing), under an exclusive lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, mode) as handle:
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield cast(BinaryIO, handle)  # binary: every caller passes a "b" mode
        finally:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def append_durably(path: Path, text: str) -> None:
    """Append UTF-8 text and fsync: after this returns the text survives a crash.

    All or nothing, so the file only ever holds whole lines: an append cut short (a full disk, a
    failed fsync) is cut off again before the error propagates, and a file that ends in part of a
    line anyway (a crash mid-append) gets a newline first. Otherwise the next append's first line
    is glued to the torn one and both are set aside as unreadable on replay.
    Written with os.write, not through Python's buffer: a buffer would keep what the disk refused
    and write it again when the file is closed, after the cut.
    """
    data = text.encode("utf-8")
    with locked(path, "a+b") as handle:
        fd = handle.fileno()
        start = os.lseek(fd, 0, os.SEEK_END)
        if start:
            handle.seek(start - 1)
            if handle.read(1) != b"\n":
                data = b"\n" + data
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]  # O_APPEND: at the end, whatever the position
            os.fsync(fd)
        except BaseException:
            try:
                os.ftruncate(fd, start)
            except OSError:  # pragma: no cover - the error that brought us here says enough
                pass
            raise


def sync(handle: BinaryIO) -> None:
    """Flush Python's buffer and the OS's: what was written is on disk."""
    handle.flush()
    os.fsync(handle.fileno())
