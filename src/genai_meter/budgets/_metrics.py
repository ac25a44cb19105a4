"""The guard's instruments: three counters for rare events, two observable gauges for spend.

The gauges are read at collection time from what the guard last saw in the store, so reporting
spend costs the hot path nothing; the counters only move on a block, a threshold or a store error.
The `scope_value` label of each budget is bounded by `label_cap` per budget and by `max_series`
series per instrument (`_ScopeLabels`); scope values past either share `names.OVERFLOW_LABEL_VALUE`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from genai_meter import names
from genai_meter._fork import new_lock_in_child, reset_in_child
from genai_meter._metrics import DEFAULT_MAX_SERIES
from genai_meter.budgets._types import NANO, Target

# The instruments a budget's scope value takes series in: both gauges (one series set), the blocked
# counter, the threshold-crossings counter (one series per threshold).
_GAUGES, _BLOCKED, _THRESHOLDS = range(3)


class _ScopeLabels:
    """The `scope_value` label of each budget and scope value on one meter's budget instruments.

    A scope value keeps a label of its own while its budget has fewer than `label_cap` of them and
    every instrument the budget reports on has room for its series under `max_series`; later ones
    share its budget's `__overflow__`: first come, first kept. Room is counted when a label is
    given, for every series it may take, whether recorded yet or not (one in the gauges if the budget
    has a USD limit, one in the blocked counter if it is hard, one per threshold in the crossings
    counter), and one overflow series per budget and instrument is set aside, so the OTel SDK's own
    limit (2,000 per instrument), which drops every label of the rest, is never reached. A scope
    value's label is decided once, so a budget's gauges and counters agree (a dashboard joins them).
    The SDK keeps a series for the life of its meter: so are the labels, across the guards that a
    configuration rebuilt at run time makes.
    """

    def __init__(self, label_cap: int, max_series: int) -> None:
        self.label_cap = label_cap
        self.max_series = max_series
        self._seen: dict[str, set[str]] = {}  # per budget: the scope values with a label of their own
        self._kinds: dict[str, set[str]] = {}  # per budget: the series each of them takes
        self._weights: dict[str, tuple[int, int, int]] = {}  # per budget: those series per instrument
        self._used = [0, 0, 0]  # series per instrument: the labelled ones and one overflow set per budget
        self._lock = threading.Lock()
        reset_in_child(self, _ScopeLabels._after_fork)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()  # (sets and counts change under the lock only: the copy is whole)

    def register(self, budget: str, kinds: Iterable[str]) -> None:
        """Declare the series each scope value of `budget` takes: "gauges", "blocked" or
        "threshold:<percent>". A kind that is new for the budget (a budget configured again with
        other thresholds) is counted for the scope values it already labelled and its overflow."""
        with self._lock:
            known = self._kinds.setdefault(budget, set())
            labelled = len(self._seen.get(budget, ()))
            for kind in set(kinds) - known:
                known.add(kind)
                self._used[_instrument_of(kind)] += labelled + 1
            weights = [0, 0, 0]
            for kind in known:
                weights[_instrument_of(kind)] += 1
            self._weights[budget] = (weights[0], weights[1], weights[2])

    def label(self, budget: str, scope_value: str) -> str:
        seen = self._seen.get(budget)
        if seen is not None and scope_value in seen:
            return scope_value
        with self._lock:
            seen = self._seen.setdefault(budget, set())
            if scope_value in seen:
                return scope_value
            if len(seen) >= self.label_cap:
                return names.OVERFLOW_LABEL_VALUE
            weights = self._weights.get(budget, (0, 0, 0))
            used = self._used
            if any(weight and used[i] + weight > self.max_series for i, weight in enumerate(weights)):
                return names.OVERFLOW_LABEL_VALUE
            for i, weight in enumerate(weights):
                used[i] += weight
            seen.add(scope_value)
            return scope_value


def _instrument_of(kind: str) -> int:
    if kind == "gauges":
        return _GAUGES
    if kind == "blocked":
        return _BLOCKED
    return _THRESHOLDS


class _MeterInstruments:
    """The budget instruments of one meter, created once: a configuration rebuilt at run time makes
    a new guard, and OTel keeps the first callbacks registered under a name, so the gauges read
    whichever guard is current."""

    def __init__(self, meter: Meter) -> None:
        self.current: BudgetMetrics | None = None
        self.labels = _ScopeLabels(label_cap=1000, max_series=DEFAULT_MAX_SERIES)  # (each guard sets its caps)
        self.thresholds = meter.create_counter(
            names.BUDGET_THRESHOLD_CROSSINGS.otel_name,
            unit=names.BUDGET_THRESHOLD_CROSSINGS.unit,
            description=names.BUDGET_THRESHOLD_CROSSINGS.description,
        )
        self.blocked = meter.create_counter(
            names.BUDGET_BLOCKED.otel_name,
            unit=names.BUDGET_BLOCKED.unit,
            description=names.BUDGET_BLOCKED.description,
        )
        self.store_errors = meter.create_counter(
            names.BUDGET_STORE_ERRORS.otel_name,
            unit=names.BUDGET_STORE_ERRORS.unit,
            description=names.BUDGET_STORE_ERRORS.description,
        )
        meter.create_observable_gauge(
            names.BUDGET_LIMIT.otel_name,
            callbacks=[lambda options: self.current._observe_limits(options) if self.current else []],
            unit=names.BUDGET_LIMIT.unit,
            description=names.BUDGET_LIMIT.description,
        )
        meter.create_observable_gauge(
            names.BUDGET_SPEND.otel_name,
            callbacks=[lambda options: self.current._observe_spend(options) if self.current else []],
            unit=names.BUDGET_SPEND.unit,
            description=names.BUDGET_SPEND.description,
        )


_instruments: dict[int, tuple[Meter, _MeterInstruments]] = {}
_instruments_lock = threading.Lock()


new_lock_in_child(__name__, "_instruments_lock")  # (a child forked while another thread built a guard)


def _instruments_for(meter: Meter) -> _MeterInstruments:
    with _instruments_lock:
        found = _instruments.get(id(meter))
        if found is not None and found[0] is meter:
            return found[1]
        created = _MeterInstruments(meter)
        _instruments[id(meter)] = (meter, created)
        return created


class BudgetMetrics:
    def __init__(
        self,
        meter: Meter | None,
        targets: Callable[[], Iterable[Target]],
        now: Callable[[], float],
        *,
        label_cap: int,
        max_series: int,
    ) -> None:
        self._targets = targets
        self._now = now
        self._meter = meter
        if meter is None:
            self._labels = _ScopeLabels(label_cap, max_series)
            return
        instruments = _instruments_for(meter)
        self._labels = instruments.labels
        self._labels.label_cap = label_cap
        self._labels.max_series = max_series
        instruments.current = self
        self._thresholds = instruments.thresholds
        self._blocked = instruments.blocked
        self._store_errors = instruments.store_errors

    def register_budget(
        self, budget: str, *, gauges: bool, blocked: bool, thresholds: Iterable[float] = ()
    ) -> None:
        """Declare what `budget` reports per scope value: gauges (a USD limit), blocks (hard mode),
        threshold crossings. Before the first `label` of the budget."""
        kinds = ["gauges"] if gauges else []
        if blocked:
            kinds.append("blocked")
        kinds.extend(f"threshold:{_percent_label(percent)}" for percent in thresholds)
        self._labels.register(budget, kinds)

    @property
    def labels_lock(self) -> threading.Lock:
        return self._labels._lock

    def label(self, budget: str, scope_value: str) -> str:
        """The `scope_value` label of `budget`'s scope value in every budget instrument."""
        return self._labels.label(budget, scope_value)

    def threshold(self, budget: str, label: str, percent: float) -> None:
        if self._meter is not None:
            self._thresholds.add(
                1,
                {
                    names.LABEL_BUDGET: budget,
                    names.LABEL_SCOPE_VALUE: label,
                    names.LABEL_THRESHOLD: _percent_label(percent),
                },
            )

    def blocked(self, budget: str, label: str) -> None:
        if self._meter is not None:
            self._blocked.add(1, {names.LABEL_BUDGET: budget, names.LABEL_SCOPE_VALUE: label})

    def store_error(self, outcome: str) -> None:
        if self._meter is not None:
            self._store_errors.add(1, {names.LABEL_OUTCOME: outcome})

    def _sums(self) -> dict[tuple[str, str], list[int]]:
        """(limit, spend) per budget and label; scope values over the cap share the overflow label."""
        now = self._now()
        sums: dict[tuple[str, str], list[int]] = {}
        for target in list(self._targets()):
            if target.last_spend < 0 or target.limit < 0:
                continue
            current = target.last_key == target.key and target.period_start <= now < target.period_end
            entry = sums.setdefault((target.budget, target.label), [0, 0])
            entry[0] += target.limit
            entry[1] += target.last_spend if current else 0
        return sums

    def _observe_limits(self, options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(limit / NANO, {names.LABEL_BUDGET: budget, names.LABEL_SCOPE_VALUE: label})
            for (budget, label), (limit, _) in self._sums().items()
        ]

    def _observe_spend(self, options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(spend / NANO, {names.LABEL_BUDGET: budget, names.LABEL_SCOPE_VALUE: label})
            for (budget, label), (_, spend) in self._sums().items()
        ]


def _percent_label(percent: float) -> str:
    return str(int(percent)) if percent == int(percent) else str(percent)
