"""Local JSON-lines files that several processes share: the spool and the dead-letter file.

Every access holds an exclusive `flock` on the file, and appends are fsync'd, so rows handed to
one of these files survive a crash and two processes never interleave half-lines.
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
    """Append UTF-8 text and fsync: after this returns the text survives a crash."""
    data = text.encode("utf-8")
    with locked(path, "ab") as handle:
        handle.write(data)
        sync(handle)


def sync(handle: BinaryIO) -> None:
    """Flush Python's buffer and the OS's: what was written is on disk."""
    handle.flush()
    os.fsync(handle.fileno())
