"""Reconciliation: the ledger's figures against the provider's, per closed UTC day and model.

Neither provider returns per-request ids, so rows cannot be matched one by one; sums per (day,
model) can. A line is a mismatch when the difference exceeds the threshold (USD for cost, tokens
or requests for counts). Every run is stored (runs and lines tables) so a scheduled job leaves a
history, and the caller exits non-zero on a mismatch so the job can alert.
Blocked and failed calls are left out of the ledger side: the provider never billed them. Each
measure is summed on the ledger side over the operations its report covers (OpenAI's completions
usage report knows nothing of embeddings calls; a cost report bills them all), so like is compared
with like.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from ._errors import QueryError
from ._ledger import Ledger, usd_sum
from ._provider_reports import ANY_MODEL, Key, Operations, ProviderFigures
from ._query import non_negative_number, whole_number
from ._rows import INT64_MAX

MEASURES = ("requests", "input_tokens", "output_tokens", "cost_usd")


@dataclass(frozen=True)
class Line:
    day: str
    model: str
    measure: str
    ledger_value: float
    provider_value: float
    mismatch: bool

    @property
    def difference(self) -> float:
        difference = self.ledger_value - self.provider_value
        return usd_sum(difference) if self.measure == "cost_usd" else difference

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": self.day,
            "model": self.model,
            "measure": self.measure,
            "ledger": self.ledger_value,
            "provider": self.provider_value,
            "difference": self.difference,
            "mismatch": self.mismatch,
        }


@dataclass
class Reconciliation:
    provider: str
    since_day: str
    until_day: str
    lines: list[Line] = field(default_factory=list)
    run_id: int | None = None

    @property
    def mismatches(self) -> list[Line]:
        return [line for line in self.lines if line.mismatch]

    @property
    def ok(self) -> bool:
        return not self.mismatches


def reconcile(
    ledger: Ledger,
    figures: ProviderFigures,
    *,
    since_day: str,
    until_day: str,
    threshold_usd: float = 0.01,
    threshold_tokens: int = 0,
    store: bool = True,
    source: str = "",
) -> Reconciliation:
    """Compare days [since_day, until_day) and store the run; figures outside the range are ignored."""
    if figures.provider is None:
        raise QueryError("the provider reports hold no usage or cost figures")
    if until_day <= since_day:
        raise QueryError(f"no closed days to compare between {since_day} and {until_day}")
    non_negative_number(threshold_usd, "threshold_usd")
    whole_number(threshold_tokens, "threshold_tokens", low=0, high=INT64_MAX)
    provider = figures.provider
    # Ledger sums per set of operations a report covers: usually two queries (usage, cost).
    ledger_sums: dict[Operations, dict[str, dict[Key, float]]] = {}

    result = Reconciliation(provider, since_day, until_day)
    for measure in MEASURES:
        if measure not in figures.operations:
            continue
        operations = figures.operations[measure]
        if operations not in ledger_sums:
            ledger_sums[operations] = _ledger_sums(ledger, provider, since_day, until_day, operations)
        ours = ledger_sums[operations][measure]
        limit = threshold_usd if measure == "cost_usd" else float(threshold_tokens)
        in_range = {k: float(v) for k, v in figures.values(measure).items() if since_day <= k[0] < until_day}
        for (day, model), value in sorted(_align(ours, in_range, figures.not_models).items()):
            ledger_value, provider_value = value
            if measure == "cost_usd":  # a day's models summed into one line: $0.30, not 0.30000000000000004
                ledger_value, provider_value = usd_sum(ledger_value), usd_sum(provider_value)
            mismatch = abs(ledger_value - provider_value) > limit + 1e-9
            result.lines.append(Line(day, model, measure, ledger_value, provider_value, mismatch))
    result.lines.sort(key=lambda line: (line.day, line.model, MEASURES.index(line.measure)))
    if store:
        result.run_id = _store(ledger, result, threshold_usd, threshold_tokens, source)
    return result


def _ledger_sums(
    ledger: Ledger, provider: str, since_day: str, until_day: str, operations: Operations
) -> dict[str, dict[Key, float]]:
    """The ledger's figures per measure and (day, model), over calls of the given operations."""
    sums: dict[str, dict[Key, float]] = {measure: {} for measure in MEASURES}
    for day, model, *values in ledger.usage_by_day_model(provider, since_day, until_day, operations):
        for measure, value in zip(MEASURES, values, strict=True):
            sums[measure][(day, model)] = value
    return sums


def _align(
    ours: dict[tuple[str, str], float], theirs: dict[tuple[str, str], float], not_models: Collection[str] = ()
) -> dict[tuple[str, str], tuple[float, float]]:
    """Pair ledger and provider sums. A day the provider reports without models ("*") and with no
    model of its own is compared as one total; every other key on either side is compared per
    model (missing side = 0). Keys in `not_models` (non-token costs) are provider-only lines that
    say nothing about whether the day is grouped by model."""
    whole_days = {day for day, model in theirs if model == ANY_MODEL}
    whole_days -= {day for day, model in theirs if model != ANY_MODEL and model not in not_models}
    pairs: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for (day, model), value in ours.items():
        key = (day, ANY_MODEL) if day in whole_days else (day, model)
        pairs[key][0] += value
    for key, value in theirs.items():
        pairs[key][1] += value
    return {key: (a, b) for key, (a, b) in pairs.items()}


def _store(ledger: Ledger, result: Reconciliation, threshold_usd: float, threshold_tokens: int, source: str) -> int:
    ledger_cost = usd_sum(sum(line.ledger_value for line in result.lines if line.measure == "cost_usd"))
    provider_costs = [line.provider_value for line in result.lines if line.measure == "cost_usd"]
    run = {
        "run_at": time.time(),
        "provider": result.provider,
        "source": source[:1000],
        "since_day": result.since_day,
        "until_day": result.until_day,
        "threshold_usd": float(threshold_usd),
        "threshold_tokens": int(threshold_tokens),
        "lines": len(result.lines),
        "mismatches": len(result.mismatches),
        "ledger_cost_usd": ledger_cost,
        "provider_cost_usd": usd_sum(sum(provider_costs)) if provider_costs else None,
        "ok": result.ok,
    }
    lines = [
        {
            "day": line.day,
            "model": line.model,
            "scope": "",
            "measure": line.measure,
            "ledger_value": line.ledger_value,
            "provider_value": line.provider_value,
            "difference": line.difference,
            "mismatch": line.mismatch,
        }
        for line in result.lines
    ]
    return ledger.save_reconciliation(run, lines)
