"""`LedgerWriter`: takes one CallRecord per call from the hot path and writes rows in batches.

`submit` is a deque append (about a tenth of a microsecond) so the app never waits for the ledger.
One daemon thread drains the deque in batches of `batch_size` at least every `flush_interval_s`;
each batch is one transaction, idempotent on (provider, response id or request id). When the
database fails or is slower than `db_timeout_s`, batches go to the spool file and the writer stops
trying the database for a back-off interval; once it answers again the spool is replayed first.
At exit (atexit) and on `close()` everything held is written or spooled. A record submitted after
`close()` (a call that was in flight when `configure()` replaced the runtime, a stream finalised at
interpreter exit after the writer's own exit hook) is written by the thread that submits it.

One bad row must never hold back the others: rows are made storable when they are built
(`_rows.storable`), a batch the database refuses for its contents (not an outage: `is_outage`) is
retried row by row, and a row refused on its own goes to the dead-letter file beside the spool.
Logs name counts and error types, never row contents (user ids are personal data).
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

from .._fork import reset_in_child
from .._record import CallRecord
from ._backend import Database, connect, is_outage
from ._dead_letters import DeadLetters, dead_letter_path
from ._rows import Row, RowMaker
from ._spool import PartialWrite, Spool
from ._url import LedgerURL, parse_ledger_url

logger = logging.getLogger("genai_meter.ledger")

_BACKOFF_FIRST_S = 0.25
_BACKOFF_MAX_S = 30.0
# multiprocessing runs its exit finalizers highest priority first: this one after the app's own
# (priority 0 and up) and after its queues have joined their feeder threads (-5).
_MP_EXIT_PRIORITY = -10

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
    rows put in the spool, `rows_dead_lettered` rows (or spool lines) set aside in the dead-letter
    file, `faults` failures caught (database errors, bad records, spool errors, dead letters).
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
        self._dead_letters = DeadLetters(dead_letter_path(self._spool.path))
        self._batch_size = max(1, int(batch_size))
        self._interval = max(0.001, float(flush_interval_s))
        self._db_timeout = float(db_timeout_s)
        self._max_pending = max(self._batch_size, int(max_pending))
        self.rows_written = 0
        self.rows_spooled = 0
        self.rows_dead_lettered = 0
        self.faults = 0
        self._db: Database | None = None
        self._retry_at = 0.0
        self._backoff = _BACKOFF_FIRST_S
        self._outage = False
        self._logged: set[str] = set()
        self._closing = False
        self._closed = False  # set once the thread has stopped: from then on `submit` writes itself
        self._close_lock = threading.Lock()
        self._late_lock = threading.Lock()
        self._mp_watched = False
        self._mp_finalizer: object = None
        # What makes rows submitted that are only due: the calls genai-meter ended off the app's
        # thread and has not recorded yet (set by the runtime); run first by `flush`.
        self.before_flush: Callable[[], None] | None = None
        self._start()
        reset_in_child(self, LedgerWriter._after_fork)
        atexit.register(self._close_at_exit)
        self._close_with_multiprocessing()

    @property
    def spool_path(self) -> Path:
        return self._spool.path

    @property
    def dead_letter_path(self) -> Path:
        return self._dead_letters.path

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
            # Appended before `_closed` is read, and `close` sets `_closed` before it empties the
            # queue itself: a record is written by one of them, whichever comes last.
            if self._closed:
                self._write_late()
            elif len(queue) >= self._batch_size:
                self._pressure(len(queue))
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
        """Wait until everything submitted so far (and due, see `before_flush`) is in the database or
        the spool; False on timeout."""
        if self.before_flush is not None:
            self.before_flush()
        if not self._thread.is_alive():
            return not self._queue
        marker = _Marker()
        self._queue.append(marker)
        self._wake.set()
        return marker.done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Flush, stop the thread, close the database. Rows still held after `timeout` are spooled.

        A record submitted afterwards is written by the submitting thread (`_write_late`)."""
        with self._close_lock:
            if self._closing:
                return
            self._closing = True
        deadline = time.monotonic() + timeout
        self._retry_at = 0.0  # one last try at the database, even during a back-off
        self.flush(timeout)
        self._stopping = True
        self._wake.set()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self._closed = True
        # What was submitted after the thread's last look at the queue; spooled if the thread is
        # still stuck in a slow database call.
        self._write_late()
        try:
            atexit.unregister(self._close_at_exit)
            finalizer, self._mp_finalizer = self._mp_finalizer, None
            if finalizer is not None:
                finalizer.cancel()  # type: ignore[attr-defined]
        except Exception:
            pass

    def _close_at_exit(self) -> None:
        try:
            self.close()
        except Exception:  # pragma: no cover - never break interpreter shutdown
            pass

    def _close_with_multiprocessing(self) -> None:
        """Have multiprocessing close this writer when its process ends, if multiprocessing is
        loaded. A worker process it starts (fork) ends with `os._exit()`, which runs no `atexit`
        handler, only multiprocessing's own finalizers: without this, the rows a worker had not yet
        written (the thread writes every `flush_interval_s`) were lost. Each worker's bootstrap
        drops the finalizers it inherited, then runs the after-fork hooks: this registers itself as
        one, once, so it runs again in every worker. Never raises."""
        util = sys.modules.get("multiprocessing.util")
        if util is None or self._closing:
            return
        try:
            if not self._mp_watched:
                self._mp_watched = True
                util.register_after_fork(self, LedgerWriter._close_with_multiprocessing)
            self._mp_finalizer = util.Finalize(
                self, _close_writer, args=(weakref.ref(self),), exitpriority=_MP_EXIT_PRIORITY
            )
        except Exception as exc:  # pragma: no cover - defensive
            self._fault("multiprocessing", f"ledger writer could not register with multiprocessing: {exc!r}")

    def __enter__(self) -> LedgerWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _write_late(self) -> None:
        """Write what the queue holds from this thread, once the writer is closed: to the database,
        or to the spool while the database is failing (back-off), the spool holds rows (the next
        writer replays them in order) or the writer thread is still stuck in a database call. One
        connection per call, closed again: this is the rare path (calls in flight at `configure()`,
        streams finalised at exit). Never raises."""
        with self._late_lock:
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
            if not rows:
                return
            try:
                if self._thread.is_alive() or time.monotonic() < self._retry_at or self._spool.pending():
                    self._to_spool(rows)
                    return
                try:
                    self._store(rows)
                    self._recovered()
                except PartialWrite as stopped:
                    self._failed(stopped.error)
                    self._to_spool(rows[stopped.done :])  # the rows before were stored or set aside
                finally:
                    self._close_db()
            except Exception as exc:  # pragma: no cover - defensive: _store raises PartialWrite only
                self._fault("late", f"ledger write after close failed: {exc!r}")

    # --- writer thread -----------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            try:
                self._drain()
                if time.monotonic() >= self._retry_at:
                    self._replay()
            except Exception as exc:  # pragma: no cover - defensive: the thread must not die
                self._fault("writer", f"ledger writer error: {exc!r}")
            if self._stopping and not self._queue:
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
            self._fault("record", f"ledger skipped a malformed call record ({type(exc).__name__})")
            return None

    def _write(self, rows: Sequence[Row]) -> None:
        if time.monotonic() >= self._retry_at and self._replay():
            try:
                self._store(rows)
                self._recovered()
                return
            except PartialWrite as stopped:
                self._failed(stopped.error)
                rows = rows[stopped.done :]  # the rows before were stored or set aside
            except Exception as exc:  # pragma: no cover - defensive: _store raises PartialWrite only
                self._failed(exc)
        self._to_spool(rows)

    def _replay(self) -> bool:
        """Replay the spool if it holds anything; False when the database failed (what the replay
        had not handled stays in the spool)."""
        if not self._spool.pending():
            return True
        try:
            self._spool.replay(self._store, self._batch_size, reject=self._dead_line)
        except PartialWrite as stopped:
            self._failed(stopped.error)
            return False
        except Exception as exc:
            self._failed(exc)
            return False
        self._recovered()
        return True

    def _store(self, rows: Sequence[Row]) -> None:
        """Insert rows in one transaction; if the database refuses them for their contents, one by
        one, setting aside each row refused on its own. Raises PartialWrite (how many rows were
        handled, and the error) when the database itself fails: the caller keeps the rest."""
        if len(rows) > 1:
            try:
                self._insert(rows)
                return
            except Exception as exc:
                if is_outage(exc):
                    raise PartialWrite(0, exc) from exc
        for done, row in enumerate(rows):
            try:
                self._insert((row,))
            except Exception as exc:
                if is_outage(exc):
                    raise PartialWrite(done, exc) from exc
                try:
                    self._dead_letters.add_row(row, exc)
                except Exception as failure:  # the row stays where it is (spool or batch): not lost
                    raise PartialWrite(done, failure) from failure
                self._dead_lettered(exc)

    def _dead_line(self, line: str, error: BaseException) -> None:
        """A spool line that holds no usable row: set aside (raising keeps it in the spool)."""
        self._dead_letters.add_line(line, error)
        self._dead_lettered(error)

    def _dead_lettered(self, error: BaseException) -> None:
        self.rows_dead_lettered += 1
        self._fault(
            "dead-letter",
            f"genai-meter ledger could not store a row ({type(error).__name__}); it was set aside in"
            f" {self._dead_letters.path} (further ones are only counted)",
        )

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
            self._fault(
                "spool", f"ledger spool {self._spool.path} failed, {len(rows)} rows lost ({type(exc).__name__})"
            )

    def _failed(self, exc: BaseException) -> None:
        self.faults += 1
        self._close_db()
        self._retry_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, _BACKOFF_MAX_S)
        if not self._outage:
            self._outage = True
            logger.warning(
                "genai-meter ledger %s unavailable, spooling rows to %s: %s: %s",
                self._url.redacted(),
                self._spool.path,
                type(exc).__name__,
                # An outage's message (connection refused, locked, timeout) names no row; its first
                # line only, as a PostgreSQL DETAIL line could.
                next(iter(str(exc).splitlines()), ""),
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
        # A lock another thread held at the fork stays held in the child: new ones.
        self._close_lock = threading.Lock()
        self._late_lock = threading.Lock()
        if self._closing:  # forked while the parent was closing it: no thread, the parent's rows are its own
            self._queue = deque()
            self._closed = True
        else:
            self._start()  # a new, empty queue: the rows queued at the fork are the parent's to write
            # multiprocessing may have been loaded since the writer was made; a worker it starts
            # drops this finalizer, but runs the after-fork hook registered with it.
            self._close_with_multiprocessing()


def _close_writer(ref: weakref.ref[LedgerWriter]) -> None:
    """multiprocessing's exit finalizer (holds the writer by weak reference only)."""
    writer = ref()
    if writer is not None:
        writer._close_at_exit()

