"""The guard's instruments: three counters for rare events, two observable gauges for spend.

The gauges are read at collection time from what the guard last saw in the store, so reporting
spend costs the hot path nothing; the counters only move on a block, a threshold or a store error.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from genai_meter import names
from genai_meter.budgets._types import NANO, Target


class _MeterInstruments:
    """The budget instruments of one meter, created once: a configuration rebuilt at run time makes
    a new guard, and OTel keeps the first callbacks registered under a name, so the gauges read
    whichever guard is current."""

    def __init__(self, meter: Meter) -> None:
        self.current: BudgetMetrics | None = None
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


def _new_lock() -> None:
    # A child forked while another thread built a guard would inherit the lock held (see `_fork`).
    global _instruments_lock
    _instruments_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock)


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
        self, meter: Meter | None, targets: Callable[[], Iterable[Target]], now: Callable[[], float]
    ) -> None:
        self._targets = targets
        self._now = now
        self._meter = meter
        if meter is None:
            return
        instruments = _instruments_for(meter)
        instruments.current = self
        self._thresholds = instruments.thresholds
        self._blocked = instruments.blocked
        self._store_errors = instruments.store_errors

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
