"""The metrics of every call: semconv histograms recorded per call, and sums kept in-process.

A synchronous OTel counter record costs ~11 µs; cost, token and request counts only ever add, so
they are kept in plain dicts under a lock (~0.5 µs) and handed to OTel by observable counters at
collection time: the exported series are the same, the hot path does not pay. User and tenant label
values are bounded by `label_cap`; values past the cap share `names.OVERFLOW_LABEL_VALUE`.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from itertools import repeat
from typing import Any

from opentelemetry.metrics import CallbackOptions, Histogram, Meter, Observation

from . import names
from ._faults import fault_counts, record_fault
from ._fork import new_lock_in_child, reset_in_child
from ._histogram_records import HistogramRecorder
from ._identity_cache import IdentityCache
from ._sum_records import SumObserver
from ._usage import Usage

# (provider, model, operation, feature, tenant, user)
LabelKey = tuple[str, str, str, str, str, str]

_popleft = deque.popleft

# Below the OTel SDK's default cardinality limit (2,000 series per instrument and reader).
DEFAULT_MAX_SERIES = 1900
_MAX_ROWS = 10_000  # label sets whose series' cells `CallMetrics` keeps


class _BoundedValues:
    """Admits at most `cap` distinct values; later ones become the overflow value."""

    __slots__ = ("__weakref__", "_cap", "_lock", "_seen")

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        reset_in_child(self, _BoundedValues._after_fork)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()  # (the set is only added to: the child's copy is whole)

    def admit(self, value: str | None) -> str:
        """`value` itself while under the cap (or seen before), else the overflow value; "" for None.
        (A method: calling an instance through `__call__` looks the method up per call.)"""
        if value is None:
            return ""
        if value in self._seen:
            return value
        with self._lock:
            if len(self._seen) < self._cap:
                self._seen.add(value)
                return value
        return names.OVERFLOW_LABEL_VALUE

    def __len__(self) -> int:
        return len(self._seen)


def _attrs_of(keys: tuple[str, ...], values: tuple[str, ...]) -> dict[str, str]:
    return {key: value for key, value in zip(keys, values, strict=True) if value != ""}


class _Sums:
    """Cumulative sums per label tuple, observed by one OTel observable counter.

    Each series' sum is held in a cell (a one-element list), so a writer that keeps a series' cell
    (`CallMetrics`' row per label set) adds to it with no lookup of the series' key, whose tuple
    would be hashed and compared on every call. Writers and `snapshot` hold `lock`, which the owner
    shares among its sums (one lock taken per call) and makes again in a forked child.

    The OTel SDK keeps at most 2,000 series per instrument by default and folds the rest into one
    point with no labels at all. To stay under it, a new series past `max_series` has its tenant
    and user (the `fold` positions) replaced by the overflow value: totals stay exact and keep
    their provider, model, operation and feature.
    """

    def __init__(
        self, label_names: tuple[str, ...], max_series: int, lock: threading.Lock, fold: tuple[int, ...] = ()
    ) -> None:
        self._label_names = label_names
        self._values: dict[tuple[str, ...], list[float]] = {}
        self._attributes: dict[tuple[str, ...], dict[str, str]] = {}
        self._max_series = max_series
        self._fold = fold
        self.lock = lock
        self.observer: SumObserver | None = None  # set once the counter that reads these sums is made

    def _admit(self, key: tuple[str, ...]) -> tuple[str, ...]:
        if len(self._values) < self._max_series or not self._fold:
            return key
        folded = list(key)
        for index in self._fold:
            folded[index] = names.OVERFLOW_LABEL_VALUE
        return tuple(folded)

    def cell(self, key: tuple[str, ...]) -> list[float]:
        """The cell of `key`'s series, made (and admitted) if new; call it holding `lock`."""
        cell = self._values.get(key)
        if cell is None:
            admitted = self._admit(key)
            cell = self._values.get(admitted)
            if cell is None:
                cell = self._values[admitted] = [0]
        return cell

    def add(self, key: tuple[str, ...], amount: float) -> None:
        with self.lock:
            self.cell(key)[0] += amount

    def snapshot(self) -> dict[tuple[str, ...], float]:
        with self.lock:
            return {key: cell[0] for key, cell in self._values.items()}

    def observe(self, _options: CallbackOptions) -> Iterable[Observation]:
        attributes = self._attributes
        series = []
        for key, value in self.snapshot().items():
            attrs = attributes.get(key)
            if attrs is None:
                attrs = attributes[key] = _attrs_of(self._label_names, key)
            series.append((attrs, value))
        if self.observer is None:
            return [Observation(value, attrs) for attrs, value in series]
        return self.observer.observations(series)

    def series_count(self) -> int:
        with self.lock:
            return len(self._values)


class _Row:
    """The cells of one label set's series (`CallMetrics.record_call`): requests by outcome, the
    five token types (`names.TOKEN_TYPES`' order; None until the type's first non-zero amount, so
    zero amounts make no series) and cost."""

    __slots__ = ("cost", "requests", "tokens")

    def __init__(self) -> None:
        self.requests: dict[str, list[float]] = {}
        self.tokens: list[list[float] | None] = [None, None, None, None, None]
        self.cost: list[float] | None = None


class _DeferredRecords:
    """What a call records after its answer reached the app, done off the app's thread.

    Two queues, drained in this order every half second by one daemon thread shared by all meters
    (`_drain_queues`), at every metric collection (an observable callback runs first), at
    `genai_meter.flush()` and a ledger flush, before the label settings change, and when a batch
    span processor is flushed or shut down (`_span_export`):

    - whole call endings (`defer`): pricing, span attributes and end, metric sums, ledger row, about
      half of what metering costs a call, made once the SDK has handed the app its answer. Only
      where nothing observable waits for them (`Call._run_or_defer` says when), so exported data is
      the same;
    - the semconv histogram records (`add`). A synchronous histogram record costs ~13 µs in the
      OTel SDK (attribute cleaning, hashing, locking), three per call; they are recorded into the
      very same OTel histograms through `HistogramRecorder` (which skips the SDK's second cleaning
      where it can). No span context is kept with a record: the SDK's exemplar reservoirs would
      hold each call's span (and all it references) until the next collection, memory that grows
      with the call rate (seen in the soak).
    """

    _INTERVAL_S = 0.5
    _MAX_ERROR_ATTRS = 1_000

    def __init__(self, token_usage: Histogram, duration: Histogram) -> None:
        self.token_usage = HistogramRecorder(token_usage)
        self.duration = HistogramRecorder(duration)
        self._pending: deque[tuple[Any, ...]] = deque()
        self._endings: deque[Callable[[], None]] = deque()
        # a duration mapping -> {error type: it with the error type}: reused, so a failing model's
        # records share one mapping and its hashed key
        self._error_attrs: IdentityCache[dict[str, dict[str, str]]] = IdentityCache(self._MAX_ERROR_ATTRS)
        self._thread: threading.Thread | None = None  # the shared drain thread, once this queue is in it
        # One drain at a time: a drain takes the whole queue before recording it, and a collection
        # (or `flush`) must not find the queue empty while the thread still holds those values.
        self._draining = threading.Lock()
        reset_in_child(self, _DeferredRecords._after_fork)

    def _after_fork(self) -> None:
        # A forked worker (gunicorn, multiprocessing) has no copy of the thread: its next call starts
        # one. What was queued is the parent's calls, which the parent records: not again here.
        self._thread = None
        self._draining = threading.Lock()
        self._pending = deque()
        self._endings = deque()

    def defer(self, ending: Callable[[], None]) -> None:
        """Run `ending` (which must not raise) at the next drain. Raises, with nothing queued, when
        the drain thread cannot be started (the caller then runs it)."""
        if self._thread is None:
            self._start()
        self._endings.append(ending)

    def add(
        self,
        usage: Usage | None,
        attrs: tuple[dict[str, str], ...],
        duration_s: float | None,
        error_type: str | None,
    ) -> None:
        """(`duration_s` None: a call with no duration of its own, see `Call.timed`.)"""
        self._pending.append((usage, attrs, duration_s, error_type))
        if self._thread is None:
            self._start()

    def _start(self) -> None:
        self._thread = _drained_in_background(self)

    def drain(self) -> None:
        with self._draining:
            self._drain()

    def _drain(self) -> None:
        endings = self._endings
        while endings:  # first: their histogram values join this drain's (only a drain takes from it)
            endings.popleft()()
        # The calls' values grouped by their attribute tuple (`CallMetrics.histogram_attributes`, one
        # per model and endpoint), in the calls' order, and handed over as groups (`record_groups`):
        # a lookup per run of calls of one tuple rather than a (value, mapping) pair made, checked
        # and grouped per value.
        # id(attribute tuple) -> (it, input tokens, output tokens, durations of calls that did not fail)
        groups: dict[int, tuple[tuple[dict[str, str], ...], list[float], list[float], list[float]]] = {}
        failed: dict[int, tuple[dict[str, str], list[float]]] = {}  # id(mapping with error type) -> it, durations
        pending = self._pending
        # The calls queued now, each taken off the queue by `map` in C (only a drain takes from it:
        # they are all there; calls queued meanwhile wait for the next drain).
        last = None  # the tuple of the call before: calls of one model and endpoint come in runs
        for usage, attrs, duration_s, error_type in map(_popleft, repeat(pending, len(pending))):
            if attrs is not last:
                group = groups.get(id(attrs))
                if group is None:
                    group = groups[id(attrs)] = (attrs, [], [], [])
                last = attrs
                add_input, add_output, add_duration = group[1].append, group[2].append, group[3].append
            if usage is not None:
                add_input(usage.input_tokens)
                add_output(usage.output_tokens)
            if duration_s is None:
                pass
            elif error_type is None:
                add_duration(duration_s)
            else:
                with_error = self._with_error(attrs[2], error_type)
                failed_group = failed.get(id(with_error))
                if failed_group is None:
                    failed[id(with_error)] = (with_error, [duration_s])
                else:
                    failed_group[1].append(duration_s)
        if not groups:
            return
        tokens: list[tuple[dict[str, str], list[float]]] = []
        durations: list[tuple[dict[str, str], list[float]]] = []
        for attrs, inputs, outputs, call_durations in groups.values():
            if inputs:
                tokens.append((attrs[0], inputs))
                tokens.append((attrs[1], outputs))
            if call_durations:
                durations.append((attrs[2], call_durations))
        durations.extend(failed.values())
        if tokens:
            self.token_usage.record_groups(tokens)
        self.duration.record_groups(durations)

    def _with_error(self, attrs: dict[str, str], error_type: str) -> dict[str, str]:
        by_error = self._error_attrs.get(attrs)
        if by_error is None:
            by_error = self._error_attrs.put(attrs, {})
        with_error = by_error.get(error_type)
        if with_error is None:  # (error types are the SDKs' exception classes: a few per mapping)
            with_error = by_error[error_type] = {**attrs, names.ERROR_TYPE: error_type}
        return with_error


# The drain thread: one for every queue (one per meter). It holds the queues weakly, so a meter's
# metrics that are no longer used are freed, and ends once none is left; the next queue starts one.
_queues: weakref.WeakSet[_DeferredRecords] = weakref.WeakSet()
_drain_thread: threading.Thread | None = None
_drain_lock = threading.Lock()  # `_queues` and `_drain_thread`
_wake = threading.Event()


def _drained_in_background(queue: _DeferredRecords) -> threading.Thread:
    """Add `queue` to those the drain thread drains (starting it if none runs); the thread."""
    global _drain_thread
    with _drain_lock:
        _queues.add(queue)
        if _drain_thread is None:
            _drain_thread = threading.Thread(target=_drain_queues, name="genai-meter-deferred", daemon=True)
            _drain_thread.start()
        else:
            _wake.set()  # (the interval is read again: tests change it)
        return _drain_thread


def _drain_queues() -> None:
    global _drain_thread
    while True:
        _wake.wait(_DeferredRecords._INTERVAL_S)
        _wake.clear()
        with _drain_lock:
            if not _queues:
                if _drain_thread is threading.current_thread():  # (not one a fork has replaced)
                    _drain_thread = None
                return
            queues = list(_queues)
        _drain_each(queues)
        del queues


def drain_all() -> None:
    """Record now what every meter has deferred (the tracer provider is flushed or shut down)."""
    with _drain_lock:
        queues = list(_queues)
    _drain_each(queues)


def _drain_each(queues: list[_DeferredRecords]) -> None:
    for queue in queues:
        try:
            queue.drain()
        except Exception as fault:  # (the thread must outlive a fault: later records need it)
            record_fault("metrics.histogram", fault)


def _new_drain_thread_in_child() -> None:
    # A forked child has no drain thread; the next call of each queue starts one (`_after_fork`).
    global _queues, _drain_thread, _drain_lock, _wake
    _queues = weakref.WeakSet(list(_queues))
    _drain_thread = None
    _drain_lock = threading.Lock()
    _wake = threading.Event()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_drain_thread_in_child)


class CallMetrics:
    """All per-call metrics of genai-meter on one OTel meter."""

    def __init__(
        self,
        meter: Meter,
        *,
        label_cap: int,
        user_labels: bool,
        tenant_labels: bool,
        max_series: int = DEFAULT_MAX_SERIES,
    ) -> None:
        self._users = _BoundedValues(label_cap)
        self._tenants = _BoundedValues(label_cap)
        self._user_labels = user_labels
        self._tenant_labels = tenant_labels
        # Values owned by parts rebuilt on reconfiguration (ledger, budget guard), read at collection.
        self.ledger_counts: Callable[[], tuple[int, int, int]] | None = None  # written, spooled, dead-lettered
        # One lock for all the sums: a call's records take it once.
        self._lock = threading.Lock()
        # tenant and user are positions 4 and 5 of every attribution label tuple
        self.cost = _Sums(names.COST.labels, max_series, self._lock, fold=(4, 5))
        self.tokens = _Sums(names.TOKENS.labels, max_series, self._lock, fold=(4, 5))
        self.requests = _Sums(names.REQUESTS.labels, max_series, self._lock, fold=(4, 5))
        self.unpriced = _Sums(names.UNPRICED_CALLS.labels, max_series, self._lock)
        self.estimated = _Sums(names.ESTIMATED_CALLS.labels, max_series, self._lock)
        reset_in_child(self, CallMetrics._after_fork)
        self._histogram_attrs: dict[tuple[str, str, str, str, str], tuple[dict[str, str], ...]] = {}
        # label key -> the cells of its series, made once per label set (bounded, as the label sets are)
        self._rows: dict[LabelKey, _Row] = {}
        self._extra_observers: list[
            tuple[names.Metric, Callable[[], Iterable[tuple[dict[str, str], float]]]]
        ] = []

        self.token_usage = meter.create_histogram(
            names.TOKEN_USAGE.otel_name,
            unit=names.TOKEN_USAGE.unit,
            description=names.TOKEN_USAGE.description,
            explicit_bucket_boundaries_advisory=list(names.TOKEN_USAGE_BUCKETS),
        )
        self.duration = meter.create_histogram(
            names.OPERATION_DURATION.otel_name,
            unit=names.OPERATION_DURATION.unit,
            description=names.OPERATION_DURATION.description,
            explicit_bucket_boundaries_advisory=list(names.OPERATION_DURATION_BUCKETS),
        )
        self.deferred = _DeferredRecords(self.token_usage, self.duration)
        # The cost counter's callback is the first of a collection: what is deferred is recorded before any is read.
        for metric, sums, callback in (
            (names.COST, self.cost, self._observe_cost),
            (names.TOKENS, self.tokens, self.tokens.observe),
            (names.REQUESTS, self.requests, self.requests.observe),
            (names.UNPRICED_CALLS, self.unpriced, self.unpriced.observe),
            (names.ESTIMATED_CALLS, self.estimated, self.estimated.observe),
        ):
            counter = meter.create_observable_counter(
                metric.otel_name, callbacks=[callback], unit=metric.unit, description=metric.description
            )
            sums.observer = SumObserver(counter)
        meter.create_observable_counter(
            names.FAULTS.otel_name,
            callbacks=[self._observe_faults],
            unit=names.FAULTS.unit,
            description=names.FAULTS.description,
        )

        for index, metric in enumerate((names.LEDGER_ROWS, names.LEDGER_SPOOLED, names.LEDGER_DEAD_LETTERED)):
            meter.create_observable_counter(
                metric.otel_name,
                callbacks=[self._ledger_observer(index)],
                unit=metric.unit,
                description=metric.description,
            )

    def reconfigure(self, *, label_cap: int, user_labels: bool, tenant_labels: bool, max_series: int) -> None:
        """Apply new label settings; sums are kept, since exported counters must never go back."""
        self._users._cap = label_cap
        self._tenants._cap = label_cap
        for sums in (self.cost, self.tokens, self.requests, self.unpriced, self.estimated):
            sums._max_series = max_series
        self._user_labels = user_labels
        self._tenant_labels = tenant_labels

    def _ledger_observer(self, index: int) -> Callable[[CallbackOptions], Iterable[Observation]]:
        """The callback of the ledger counter at `index` of `ledger_counts`' tuple."""
        return lambda _options: self._observe_ledger(index)

    def _observe_ledger(self, index: int) -> Iterable[Observation]:
        read = self.ledger_counts
        if read is None:
            return []
        try:
            return [Observation(read()[index], {})]
        except Exception:
            return []

    def _observe_cost(self, options: CallbackOptions) -> Iterable[Observation]:
        # Collection starts with the observable callbacks, this one first: the call endings and
        # histogram records still pending are recorded now, before the SDK reads any of them.
        self.deferred.drain()
        return self.cost.observe(options)

    def _observe_faults(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(count, {names.LABEL_FAULT: where}) for where, count in fault_counts().items()]

    def label_key(
        self,
        provider: str,
        model: str,
        operation: str,
        feature: str | None,
        tenant: str | None,
        user: str | None,
    ) -> LabelKey:
        return (
            provider,
            model,
            operation,
            feature or "",
            self._tenants.admit(tenant) if self._tenant_labels else "",
            self._users.admit(user) if self._user_labels else "",
        )

    def histogram_attributes(
        self, operation: str, provider: str, request_model: str, response_model: str, server: str
    ) -> tuple[dict[str, str], ...]:
        """(input-token attrs, output-token attrs, duration attrs), cached per model and endpoint."""
        cache_key = (operation, provider, request_model, response_model, server)
        cached = self._histogram_attrs.get(cache_key)
        if cached is None:
            base = {
                names.OPERATION_NAME: operation,
                names.PROVIDER_NAME: provider,
                names.REQUEST_MODEL: request_model,
            }
            if response_model:
                base[names.RESPONSE_MODEL] = response_model
            if server:
                base[names.SERVER_ADDRESS] = server
            cached = (
                {**base, names.TOKEN_TYPE: names.TOKEN_INPUT},
                {**base, names.TOKEN_TYPE: names.TOKEN_OUTPUT},
                base,
            )
            if len(self._histogram_attrs) < 10_000:
                self._histogram_attrs[cache_key] = cached
        return cached

    def record_call(
        self,
        key: LabelKey,
        usage: Usage | None,
        cost_usd: float | None,
        outcome: str,
        histogram_attrs: tuple[dict[str, str], ...],
        duration_s: float | None,
        error_type: str | None,
    ) -> None:
        row = self._rows.get(key)
        if row is None:
            row = _Row()
            if len(self._rows) < _MAX_ROWS:  # (past it, a row per call: the cells are looked up by key)
                self._rows[key] = row
        with self._lock:
            cell = row.requests.get(outcome)
            if cell is None:
                cell = row.requests[outcome] = self.requests.cell((*key, outcome))
            cell[0] += 1
            if usage is not None:
                # (each token type in turn, in `names.TOKEN_TYPES`' order: a cell exists once its type
                # had an amount, `[0]`, never empty; written out, not a loop over a tuple of them)
                cells = row.tokens
                amount = usage.input_tokens
                if amount:
                    (cells[0] or self._token_cell(cells, key, 0))[0] += amount
                amount = usage.output_tokens
                if amount:
                    (cells[1] or self._token_cell(cells, key, 1))[0] += amount
                amount = usage.cache_read_tokens
                if amount:
                    (cells[2] or self._token_cell(cells, key, 2))[0] += amount
                amount = usage.cache_write_tokens
                if amount:
                    (cells[3] or self._token_cell(cells, key, 3))[0] += amount
                amount = usage.reasoning_tokens
                if amount:
                    (cells[4] or self._token_cell(cells, key, 4))[0] += amount
                if usage.estimated:
                    self.estimated.cell((key[0], key[1]))[0] += 1
            if cost_usd is not None:
                cell = row.cost
                if cell is None:
                    cell = row.cost = self.cost.cell(key)
                cell[0] += cost_usd
            elif outcome == names.OUTCOME_UNPRICED:
                self.unpriced.cell((key[0], key[1]))[0] += 1
        self.deferred.add(usage, histogram_attrs, duration_s, error_type)

    def _token_cell(self, cells: list[list[float] | None], key: LabelKey, index: int) -> list[float]:
        """The cell of a row's token type `index` (`names.TOKEN_TYPES`), made at its first amount."""
        cell = cells[index] = self.tokens.cell((*key, names.TOKEN_TYPES[index]))
        return cell

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        for sums in (self.cost, self.tokens, self.requests, self.unpriced, self.estimated):
            sums.lock = self._lock

    def record_blocked(self, key: LabelKey) -> None:
        self.requests.add((*key, names.OUTCOME_BLOCKED), 1)

    def distinct_users(self) -> int:
        return len(self._users)

    def series_counts(self) -> dict[str, int]:
        return {
            names.COST.prometheus_name: self.cost.series_count(),
            names.TOKENS.prometheus_name: self.tokens.series_count(),
            names.REQUESTS.prometheus_name: self.requests.series_count(),
        }


# id(meter) -> (the meter, held weakly where it can be, its metrics). An entry goes with its meter
# (a meter provider shut down and dropped, e.g. one per test), and the metrics with it.
_by_meter: dict[int, tuple[Callable[[], object], CallMetrics]] = {}
_by_meter_lock = threading.Lock()


def _forget_meter(key: int, ref: weakref.ref[Meter]) -> None:
    # (no lock: a weak reference's callback may run in any thread, one holding `_by_meter_lock` too;
    # the id cannot be taken by another meter before this runs)
    entry = _by_meter.get(key)
    if entry is not None and entry[0] is ref:
        _by_meter.pop(key, None)


def _held(meter: Meter) -> Callable[[], object]:
    key = id(meter)
    try:
        return weakref.ref(meter, lambda ref: _forget_meter(key, ref))
    except TypeError:  # (a meter that takes no weak reference is held, as before)
        return lambda: meter


new_lock_in_child(__name__, "_by_meter_lock")


def call_metrics_for(
    meter: Meter, *, label_cap: int, user_labels: bool, tenant_labels: bool, max_series: int = DEFAULT_MAX_SERIES
) -> CallMetrics:
    """One `CallMetrics` per meter: OTel instruments are registered once, whatever reconfigures."""
    settings: dict[str, Any] = {
        "label_cap": label_cap,
        "user_labels": user_labels,
        "tenant_labels": tenant_labels,
        "max_series": max_series,
    }
    with _by_meter_lock:
        entry = _by_meter.get(id(meter))
        if entry is not None and entry[0]() is meter:
            # The calls that ended before are recorded with the settings they ended under (a user
            # label switched on now must not reach a call made while it was off).
            entry[1].deferred.drain()
            entry[1].reconfigure(**settings)
            return entry[1]
        created = CallMetrics(meter, **settings)
        _by_meter[id(meter)] = (_held(meter), created)
        return created
