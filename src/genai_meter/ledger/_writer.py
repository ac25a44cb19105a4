"""`LedgerWriter`: takes one CallRecord per call from the hot path and writes rows in batches.

`submit` is a deque append (about a tenth of a microsecond) so the app never waits for the ledger.
One daemon thread drains the deque in batches of `batch_size` at least every `flush_interval_s`;
each batch is one transaction, idempotent on (provider, response id or request id). When the
database fails or is slower than `db_timeout_s`, batches go to the spool file and the writer stops
trying the database for a back-off interval; once it answers again the spool is replayed first.
At exit (atexit) and on `close()` everything held is written or spooled.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Collection, Sequence
from pathlib import Path

from .._record import CallRecord
from ._backend import Database, connect
from ._rows import Row, RowMaker
from ._spool import Spool
from ._url import LedgerURL, parse_ledger_url

logger = logging.getLogger("genai_meter.ledger")

_BACKOFF_FIRST_S = 0.25
_BACKOFF_MAX_S = 30.0

_live_writers: weakref.WeakSet[LedgerWriter] = weakref.WeakSet()
# Connections inherited by a forked child: never touched, never collected (closing them there would
# close the parent's session).
_inherited: list[object] = []


def default_spool_path(url: LedgerURL) -> Path:
    """$XDG_STATE_HOME/genai-meter/spool-<hash of the URL>.jsonl: one spool per ledger, per machine."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    digest = hashlib.sha256(f"{url.kind}|{url.target}|{url.schema}".encode()).hexdigest()[:16]
    return Path(base, "genai-meter", f"spool-{digest}.jsonl")


class _Marker:
    """Put in the queue by `flush`: set once every record queued before it is durable."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class LedgerWriter:
    """Batched, idempotent, spool-backed writer of ledger rows.

    Counters (read them for metrics): `rows_written` rows added to the database, `rows_spooled`
    rows put in the spool, `faults` failures caught (database errors, bad records, spool errors).
    """

    def __init__(
        self,
        url: str,
        *,
        spool_path: str | os.PathLike[str] | None = None,
        batch_size: int = 500,
        flush_interval_s: float = 1.0,
        metadata_keys: Collection[str] | None = None,
        max_metadata_items: int = 16,
        db_timeout_s: float = 5.0,
        max_pending: int = 1_000_000,
    ) -> None:
        self._url = parse_ledger_url(url)
        self._rows = RowMaker(metadata_keys, max_metadata_items)
        self._spool = Spool(spool_path if spool_path is not None else default_spool_path(self._url))
        self._batch_size = max(1, int(batch_size))
        self._interval = max(0.001, float(flush_interval_s))
        self._db_timeout = float(db_timeout_s)
        self._max_pending = max(self._batch_size, int(max_pending))
        self.rows_written = 0
        self.rows_spooled = 0
        self.faults = 0
        self._db: Database | None = None
        self._retry_at = 0.0
        self._backoff = _BACKOFF_FIRST_S
        self._outage = False
        self._logged: set[str] = set()
        self._closed = False
        self._start()
        _live_writers.add(self)
        atexit.register(self._close_at_exit)

    @property
    def spool_path(self) -> Path:
        return self._spool.path

    def _start(self) -> None:
        self._queue: deque[CallRecord | _Marker] = deque()
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="genai-meter-ledger", daemon=True)
        self._thread.start()

    # --- hot path ------------------------------------------------------------------------------
    def submit(self, record: CallRecord) -> None:
        """Queue one record; never blocks, never raises."""
        try:
            queue = self._queue
            queue.append(record)
            if len(queue) >= self._batch_size:
                self._pressure(len(queue))
            if self._closed:
                self._fault("submit-after-close", "record submitted after the ledger writer was closed")
        except Exception as exc:  # pragma: no cover - deque.append does not fail short of MemoryError
            self._fault("submit", f"ledger submit failed: {exc!r}")

    def _pressure(self, pending: int) -> None:
        if not self._wake.is_set():
            self._wake.set()
        if pending > self._max_pending:
            # The writer thread cannot keep up even with the spool (disk stuck too): drop the oldest
            # rather than grow without bound. Counted and logged; the app is still not blocked.
            try:
                item = self._queue.popleft()
            except IndexError:
                return
            if isinstance(item, _Marker):
                self._queue.appendleft(item)
                return
            self._fault("overflow", f"ledger queue over {self._max_pending} records; dropping the oldest")

    # --- flush / close -----------------------------------------------------------------------------
    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything submitted so far is in the database or the spool; False on timeout."""
        if not self._thread.is_alive():
            return not self._queue
        marker = _Marker()
        self._queue.append(marker)
        self._wake.set()
        return marker.done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Flush, stop the thread, close the database. Rows still held after `timeout` are spooled."""
        if self._closed:
            return
        deadline = time.monotonic() + timeout
        self._retry_at = 0.0  # one last try at the database, even during a back-off
        self.flush(timeout)
        self._closed = True
        self._stopping = True
        self._wake.set()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive() or self._queue:
            # The thread is stuck in a slow database call: spool what is left from this thread.
            self._spool_leftovers()
        try:
            atexit.unregister(self._close_at_exit)
        except Exception:
            pass

    def _close_at_exit(self) -> None:
        try:
            self.close()
        except Exception:  # pragma: no cover - never break interpreter shutdown
            pass

    def __enter__(self) -> LedgerWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _spool_leftovers(self) -> None:
        rows: list[Row] = []
        while True:
            try:
                item = self._queue.popleft()
            except IndexError:
                break
            if isinstance(item, _Marker):
                item.done.set()
            else:
                row = self._row(item)
                if row is not None:
                    rows.append(row)
        self._to_spool(rows)

    # --- writer thread -----------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            try:
                self._drain()
                if self._spool.pending() and time.monotonic() >= self._retry_at:
                    self._replay()
            except Exception as exc:  # pragma: no cover - defensive: the thread must not die
                self._fault("writer", f"ledger writer error: {exc!r}")
            if self._stopping and not self._queue:
                if self._spool.pending():
                    self._replay()  # last chance to empty the spool before the process exits
                break
        self._close_db()

    def _drain(self) -> None:
        queue = self._queue
        while queue:
            records: list[CallRecord] = []
            markers: list[_Marker] = []
            while queue and len(records) < self._batch_size:
                item = queue.popleft()
                if isinstance(item, _Marker):
                    markers.append(item)
                else:
                    records.append(item)
            rows = [row for row in map(self._row, records) if row is not None]
            if rows:
                self._write(rows)
            for marker in markers:
                marker.done.set()

    def _row(self, record: CallRecord) -> Row | None:
        try:
            return self._rows.row(record)
        except Exception as exc:
            self._fault("record", f"ledger skipped a malformed call record: {exc!r}")
            return None

    def _write(self, rows: Sequence[Row]) -> None:
        if time.monotonic() >= self._retry_at:
            try:
                if self._spool.pending():
                    self._spool.replay(self._insert, self._batch_size)
                self._insert(rows)
                self._recovered()
                return
            except Exception as exc:
                self._failed(exc)
        self._to_spool(rows)

    def _replay(self) -> None:
        try:
            self._spool.replay(self._insert, self._batch_size)
            self._recovered()
        except Exception as exc:
            self._failed(exc)

    def _insert(self, rows: Sequence[Row]) -> None:
        if self._db is None:
            self._db = connect(self._url, timeout_s=self._db_timeout)
        self.rows_written += self._db.insert_rows(rows)

    def _to_spool(self, rows: Sequence[Row]) -> None:
        if not rows:
            return
        try:
            self._spool.append(rows)
            self.rows_spooled += len(rows)
        except Exception as exc:
            self._fault("spool", f"ledger spool {self._spool.path} failed, {len(rows)} rows lost: {exc!r}")

    def _failed(self, exc: Exception) -> None:
        self.faults += 1
        self._close_db()
        self._retry_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, _BACKOFF_MAX_S)
        if not self._outage:
            self._outage = True
            logger.warning(
                "genai-meter ledger %s unavailable, spooling rows to %s: %s",
                self._url.redacted(),
                self._spool.path,
                exc,
            )

    def _recovered(self) -> None:
        self._backoff = _BACKOFF_FIRST_S
        if self._outage:
            self._outage = False
            logger.warning("genai-meter ledger %s is back; spool replayed", self._url.redacted())

    def _close_db(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()

    def _fault(self, where: str, message: str) -> None:
        self.faults += 1
        if where not in self._logged:
            self._logged.add(where)
            logger.error("%s", message)

    def _after_fork(self) -> None:
        if self._db is not None:
            _inherited.append(self._db)
            self._db = None
        if not self._closed:
            self._start()


def _after_fork_in_child() -> None:
    for writer in list(_live_writers):
        writer._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
