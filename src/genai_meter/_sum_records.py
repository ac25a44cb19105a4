"""Handing genai-meter's cumulative sums to an OTel SDK observable counter at collection without
the SDK's per-observation work.

genai-meter keeps its counters' sums itself (`_metrics._Sums`) and the SDK reads them through an
observable counter's callback at each collection. For each observation the callback returns, the
SDK (1.45) makes a `Measurement`, cleaning its attribute mapping recursively (~40 Python calls for
six labels), asks the exemplar filter, copies the mapping and hashes it recursively again to find
the series' aggregation, which then adds the value: ~850 Python opcodes a series, ~90,000 CPU
instructions, at every collection, for mappings that are clean by construction and never change.

Where the counter is the SDK's own, its meter provider has one reader and its set-up is one this
module knows (`_sdk_views`), each series' mapping is hashed once (by the SDK's own
`_hash_attributes`) and its value is set straight into the series' aggregation in each of the
reader's views: the callback returns no observation for it. Setting is what the SDK's `aggregate`
amounts to here: an asynchronous sum's `collect` hands out its value and empties it, so when the
callbacks run, the aggregation is empty and `aggregate` would add the value to nothing.
`aggregate` and `collect` are checked to be the code this relies on (their sources as in OTel SDK
1.45.0 to 1.45.2; the fast path needs `_hash_attributes`, 1.45.0 and later, in any case). With
several readers, the SDK feeds only the one collecting, which a callback cannot tell, so every
series goes through the public observation.

A series goes through the public observation too wherever the SDK has to decide: the first time
(no aggregation yet: the SDK makes it, with its start time and cardinality limit), past the
cardinality limit (its values go to the overflow series), with an aggregation other than the SDK's
sum (a view), a value that is not a finite number, or a sampled span current at the collection
(the trace-based exemplar filter would sample it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.metrics import ObservableCounter, Observation
from opentelemetry.trace import INVALID_SPAN, get_current_span

from ._sdk_views import SDK_INTERNALS, ViewMatches, all_mirror

if SDK_INTERNALS:
    from opentelemetry.sdk.metrics._internal.aggregation import _SumAggregation
    from opentelemetry.sdk.metrics._internal.instrument import _ObservableCounter
else:  # the public observations only
    _SumAggregation = _ObservableCounter = None  # type: ignore[assignment,misc]

__all__ = ["SumObserver"]

# The sha256 of `_SumAggregation.aggregate`'s and `.collect`'s sources without comments and spacing
# (`_sdk_views.source_digest`), in the OTel SDK versions whose behaviour `SumObserver` relies on.
_KNOWN_AGGREGATE_DIGESTS = frozenset({"b74a0b5944fff12a37b3830f8aeb8fcde1b9315d326d8bc02e1f59ca27965b41"})
_KNOWN_COLLECT_DIGESTS = frozenset({"7d3c6ed8aaedfaa933195bb40ec9d2fd5405680022a20b244504dd08fe8cc9d9"})


def _sampled_span_current() -> bool:
    """Whether the trace-based exemplar filter would sample an observation made now (it reads the
    collecting thread's current span)."""
    span = get_current_span()
    return span is not INVALID_SPAN and bool(span.get_span_context().trace_flags.sampled)


class SumObserver:
    """Hands one observable counter's cumulative sums to the SDK (see the module's docstring)."""

    __slots__ = ("_views", "fast_observations")

    def __init__(self, counter: ObservableCounter) -> None:
        self._views = ViewMatches(counter, _ObservableCounter, "metrics.sum")
        self.fast_observations = 0  # series set straight into their aggregations (for tests and benchmarks)

    @property
    def broken(self) -> bool:
        """A surprise in the SDK's internals: public observations from then on."""
        return self._views.broken

    def observations(self, series: Sequence[tuple[Mapping[str, str], float]]) -> list[Observation]:
        """What the counter's callback returns for these (attributes, cumulative sum) series: the
        observations of the series the SDK must see, the others' values set in their aggregations.
        The mappings must not change once handed over."""
        matches = self._views.get()
        if (
            matches is None
            or self._views.readers != 1
            or not _sum_aggregation_known()
            or not _finite(series)
            or _sampled_span_current()
        ):
            return [Observation(value, attributes) for attributes, value in series]
        try:
            # every lookup first: nothing is set unless all are made
            found = [(attributes, value, self._aggregations(matches, attributes)) for attributes, value in series]
        except Exception as fault:
            self._views.fail(fault)
            return [Observation(value, attributes) for attributes, value in series]
        public = []
        for attributes, value, aggregations in found:
            if aggregations is None:
                public.append(Observation(value, attributes))
                continue
            for aggregation in aggregations:
                with aggregation._lock:
                    aggregation._value = value
            self.fast_observations += 1
        return public

    def _aggregations(self, matches: list[tuple[Any, bool]], attributes: Mapping[str, str]) -> list[Any] | None:
        """The series' aggregation in every view, or None where the SDK must take its observation."""
        key = self._views.key(attributes)
        found = []
        for match, locked in matches:
            if locked:  # (a view that drops its aggregations at delta collections, under its lock)
                with match._lock:
                    aggregation = match._attributes_aggregation.get(key)
            else:
                aggregation = match._attributes_aggregation.get(key)
            if aggregation is None or type(aggregation) is not _SumAggregation:
                return None  # (a new series; past the cardinality limit; a view's other aggregation)
            found.append(aggregation)
        return found


def _sum_aggregation_known() -> bool:
    """Whether the SDK's sum aggregation has the `aggregate` and `collect` this relies on (read
    once; a method replaced later is read again)."""
    return all_mirror((_SumAggregation.aggregate,), _KNOWN_AGGREGATE_DIGESTS) and all_mirror(
        (_SumAggregation.collect,), _KNOWN_COLLECT_DIGESTS
    )


def _finite(series: Sequence[tuple[Mapping[str, str], float]]) -> bool:
    """Whether every value is an int or float the SDK takes (it skips a value that is not finite)."""
    try:
        return all(type(value) in (int, float) and math.isfinite(value) for _attributes, value in series)
    except Exception:  # (an int too large for a float)
        return False
