"""Recording the semconv histogram values into an OTel SDK histogram without cleaning and hashing
their attributes again for every value.

One `Histogram.record` with the six semconv attributes costs ~13 µs in the OTel SDK (1.45): the
attribute mapping is cleaned recursively into a new `Measurement` (~4 µs), copied, and hashed
recursively again (~7 µs) to find its aggregation, three times per call. genai-meter builds those
mappings itself (str to str, one per model and endpoint, reused), so where the histogram is the
SDK's own and its set-up is one whose behaviour this module knows, a batch's values are grouped by
mapping, each mapping is hashed once (by the SDK's own `_hash_attributes`, so the key is the SDK's)
and each group goes straight to the aggregation that key names, in every reader's view (under the
view's lock where the SDK takes it too: a view that drops its aggregations at delta collections).
There its values are added as the SDK's explicit-bucket `aggregate` adds one value (bucket count,
sum, min, max; no exemplar, as with `aggregate(measurement, False)`), all of them under one hold of
the aggregation's lock, with no `Measurement` made: ~50,000 instructions fewer per OpenAI call than
a call to `aggregate` per value (`bench_overhead.py --instructions`). That method is checked to be
the one mirrored here (its source, unchanged from OTel SDK 1.30 to 1.45.2, and no wrapper around
it); any other is called per value. The whole fast path needs `_hash_attributes`, so runs on
OTel SDK 1.45.0 and later. Where a view has no aggregation for the key yet (the first value of a
series, or the first after a delta collection dropped it), the value goes through that view's own
`consume_measurement`, which makes it the SDK's way (start time, cardinality limit, overflow), and
the rest of the group follows it into the aggregation made. This holds for the SDK's shapes seen so
far (1.45.1 keeps every aggregation; 1.45.2 drops them at delta collections, under the same lock).

The public `record` is used instead, for all values, when anything differs: another SDK or an older
one without these internals, a view that keeps only some attribute keys, an exemplar filter that
may sample (always-on, or a custom one; the trace-based filter never samples here, because a
record carries no span context, see `_metrics._DeferredRecords`), a disabled meter, a value
that is negative or not finite (the SDK's warnings), or any surprise in these internals (counted as
a fault once, and the public path kept from then on). Tests compare what both paths export.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from functools import reduce
from itertools import repeat
from operator import add
from typing import Any

from opentelemetry.context import Context
from opentelemetry.metrics import Histogram

from ._faults import record_fault
from ._sdk_views import SDK_INTERNALS, ViewMatches, mirrors

if SDK_INTERNALS:
    from opentelemetry.sdk.metrics._internal.instrument import _Histogram as _SdkHistogram
    from opentelemetry.sdk.metrics._internal.measurement import Measurement as _Measurement
else:  # the public record only
    _SdkHistogram = None  # type: ignore[assignment,misc]

_EMPTY_CONTEXT = Context()
_NUMBERS = (int, float)
_NUMBER_TYPES = frozenset(_NUMBERS)
# The sha256 of `_ExplicitBucketHistogramAggregation.aggregate`'s source without comments and
# spacing (`_sdk_views.source_digest`), in the OTel SDK versions whose code `HistogramRecorder._aggregate` mirrors.
_MIRRORED_AGGREGATE_DIGESTS = frozenset({"3bff7765aa1574ce506feb8543bdb2c0fdf8baaa6cad4de9103bb596b06b9809"})


def _recordable(values: list[float]) -> bool:
    """Whether the SDK records every one of `values` (ints or floats, none negative, infinite or NaN),
    checked for the group in C loops rather than per value: the sum of values none negative is
    infinite or NaN where one is (or, rarely, where the sum overflows: the values are then checked
    one by one, as they are where anything here raises)."""
    try:
        return _NUMBER_TYPES.issuperset(map(type, values)) and min(values) >= 0 and sum(values) < math.inf
    except Exception:  # (an int too large for a float beside a float; no values)
        return False


class HistogramRecorder:
    """Records (value, attributes) pairs into one histogram (see the module's docstring)."""

    __slots__ = ("_mirrored", "_taken", "_views", "fast_records")

    def __init__(self, histogram: Histogram) -> None:
        self._views = ViewMatches(histogram, _SdkHistogram, "metrics.histogram")
        self._mirrored: object = None  # the SDK's aggregate method once `_mirrors` has checked it
        self._taken = 0  # how many of its group the view `_into_view` works on has taken
        self.fast_records = 0  # values that went straight to their aggregations (for tests and benchmarks)

    def record(self, values: Iterable[tuple[float, Mapping[str, str]]]) -> None:
        """Record each value with its attributes. The mappings must not change once handed over."""
        # The values of one attribute mapping (one model and endpoint), in their order: each group
        # goes into each view's aggregation in one step. (Grouped by the mapping's identity, not its
        # hashed key, which costs a hash of its items per value: two equal mappings, which
        # genai-meter makes only past its caches' bounds, are added one after the other, and a float
        # sum may then differ from the values' arrival order in its last bits.)
        groups: dict[int, tuple[Mapping[str, str], list[float]]] = {}
        for value, attributes in values:
            group = groups.get(id(attributes))  # (the group holds its mapping: ids stay unique meanwhile)
            if group is None:
                groups[id(attributes)] = (attributes, [value])
            else:
                group[1].append(value)
        self.record_groups(groups.values())

    def record_groups(self, groups: Iterable[tuple[Mapping[str, str], list[float]]]) -> None:
        """Record each group's values (in their order) with its attributes, as `record` does with
        the same pairs: callers that have their values grouped by mapping already (the deferred
        records) skip its grouping per value. The mappings must not change once handed over."""
        matches = self._views.get()
        if matches is None:
            self._record_public((value, attributes) for attributes, values in groups for value in values)
            return
        now = time.time_ns()
        pending = iter(groups)
        for attributes, group_values in pending:
            if not _recordable(group_values):
                group_values = self._without_refused(attributes, group_values)
                if not group_values:
                    continue
            first = True  # whether the view being given the group is the first
            self._taken = 0
            try:
                key = self._key(attributes)
                for match, locked in matches:
                    self._into_view(match, locked, key, attributes, group_values, now)
                    first = False
            except Exception as fault:
                self._views.fail(fault)
                # Views take a group in their order: the values the first view had not taken are in
                # none, and the public record gives them to all (those it had may be in some only).
                missed = group_values[self._taken :] if first else []
                self._record_public((value, attributes) for value in missed)
                self._record_public((value, mapping) for mapping, later in pending for value in later)
                return
            self.fast_records += len(group_values)

    def _without_refused(self, attributes: Mapping[str, str], values: list[float]) -> list[float]:
        """`values` less those the SDK refuses (negative, infinite, NaN or not a number), which go
        through the public record for its own warnings (and no record)."""
        kept = []
        for value in values:
            if type(value) in _NUMBERS and 0 <= value < math.inf:
                kept.append(value)
            else:
                self._record_public(((value, attributes),))
        return kept

    @property
    def broken(self) -> bool:
        """A surprise in the SDK's internals: the public record from then on."""
        return self._views.broken

    def _into_view(
        self, match: Any, locked: bool, key: Any, attributes: Mapping[str, str], values: list[float], now: int
    ) -> None:
        """Aggregate `values` (one attribute key's) into one view; `_taken` says how many it has. A
        series new to the view is made by the view's own `consume_measurement` from the first value;
        the rest follow it."""
        done = self._taken = 0
        while done < len(values):
            if locked:  # a delta view swaps its aggregations at collection, under its lock
                with match._lock:
                    aggregation = match._attributes_aggregation.get(key)
                    if aggregation is not None:
                        self._aggregate(aggregation, values[done:] if done else values, attributes, now, done)
            else:  # (as the SDK itself does: a view that keeps its aggregations for good)
                aggregation = match._attributes_aggregation.get(key)
                if aggregation is not None:
                    self._aggregate(aggregation, values[done:] if done else values, attributes, now, done)
            if aggregation is not None:
                self._taken = len(values)
                return
            # a new series in this view: made by the SDK (which takes the lock); or, past its
            # cardinality limit, the overflow series, which is not under `key`: each value that way
            match.consume_measurement(self._measurement(values[done], attributes, now), False)
            done = self._taken = done + 1

    def _aggregate(
        self, aggregation: Any, values: list[float], attributes: Mapping[str, str], now: int, done: int
    ) -> None:
        """What the aggregation's own `aggregate(measurement, False)` does with each value, done for
        all of them under one hold of its lock where its code is the one this mirrors: every field
        read and every result worked out before any is changed. `done`: how many values of the
        group the view had before these (`_taken` counts on from there)."""
        method = type(aggregation).aggregate
        if method is not self._mirrored and not self._mirrors(method):
            for value in values:
                aggregation.aggregate(self._measurement(value, attributes, now), False)
                done = self._taken = done + 1
            return
        # (Loops over the values run in C: `map`, `reduce` and `list.count`, with the Python loop
        # over the buckets they fall in, a few per group. `reduce(add)` adds them one by one in
        # their order, as the SDK's `_sum += value` does: `sum` may compensate (Python 3.12+).)
        with aggregation._lock:
            counts = aggregation._value
            if counts is None:
                counts = aggregation._get_empty_bucket_counts()
            buckets = list(map(bisect_left, repeat(aggregation._boundaries), values))
            total = reduce(add, values, aggregation._sum)
            min_max = aggregation._record_min_max
            if min_max:
                low = min(aggregation._min, *values)
                high = max(aggregation._max, *values)
            for bucket in set(buckets):
                counts[bucket] += buckets.count(bucket)
            aggregation._value = counts
            aggregation._sum = total
            if min_max:
                aggregation._min = low
                aggregation._max = high

    def _mirrors(self, method: Any) -> bool:
        """Whether `method` is the SDK's explicit-bucket `aggregate` whose code `_aggregate` mirrors."""
        known = mirrors(method, _MIRRORED_AGGREGATE_DIGESTS)
        if known:
            self._mirrored = method
        return known

    def _measurement(self, value: float, attributes: Mapping[str, str], now: int) -> Any:
        """The SDK's `Measurement` of a value, its attributes as they are (they are clean already)."""
        measurement = object.__new__(_Measurement)
        fields = measurement.__dict__  # a frozen dataclass: its fields are set as its __init__ does
        fields["value"] = value
        fields["time_unix_nano"] = now
        fields["instrument"] = self._views.instrument
        fields["context"] = _EMPTY_CONTEXT
        fields["attributes"] = attributes
        return measurement

    def _record_public(self, values: Iterable[tuple[float, Mapping[str, str]]]) -> None:
        record = self._views.instrument.record
        for value, attributes in values:
            try:
                record(value, attributes, _EMPTY_CONTEXT)
            except Exception as fault:  # a broken record must not stop the others
                record_fault("metrics.histogram", fault)

    def _key(self, attributes: Mapping[str, str]) -> Any:
        return self._views.key(attributes)
