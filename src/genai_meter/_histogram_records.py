"""Recording the semconv histogram values into an OTel SDK histogram without cleaning and hashing
their attributes again for every value.

One `Histogram.record` with the six semconv attributes costs ~13 µs in the OTel SDK (1.45): the
attribute mapping is cleaned recursively into a new `Measurement` (~4 µs), copied, and hashed
recursively again (~7 µs) to find its aggregation, three times per call. genai-meter builds those
mappings itself (str to str, one per model and endpoint, reused), so where the histogram is the
SDK's own and its set-up is one whose behaviour this module knows, each mapping is hashed once (by
the SDK's own `_hash_attributes`, so the key is the SDK's) and each value goes straight to the
aggregation that key names, in every reader's view (under the view's lock where the SDK takes it
too: a view that drops its aggregations at delta collections). Where a view has no
aggregation for the key yet (the first value of a series, or the first after a delta collection
dropped it), the value goes through that view's own `consume_measurement`, which makes it the SDK's
way (start time, cardinality limit, overflow). This holds for the SDK's shapes seen so far (1.45.1
keeps every aggregation; 1.45.2 drops them at delta collections, under the same lock).

The public `record` is used instead, for all values, when anything differs: another SDK or an older
one without these internals, a view that keeps only some attribute keys, an exemplar filter that
may sample (always-on, or a custom one; the trace-based filter never samples here, because a
record carries no span context, see `_metrics._DeferredHistograms`), a disabled meter, a value
that is negative or not finite (the SDK's warnings), or any surprise in these internals (counted as
a fault once, and the public path kept from then on). Tests compare what both paths export.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.context import Context
from opentelemetry.metrics import Histogram

from ._faults import record_fault

try:
    from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, TraceBasedExemplarFilter
    from opentelemetry.sdk.metrics._internal._view_instrument_match import _hash_attributes
    from opentelemetry.sdk.metrics._internal.instrument import _Histogram as _SdkHistogram
    from opentelemetry.sdk.metrics._internal.measurement import Measurement as _Measurement
    from opentelemetry.sdk.metrics._internal.measurement_consumer import SynchronousMeasurementConsumer

    _QUIET_FILTERS: tuple[type, ...] = (AlwaysOffExemplarFilter, TraceBasedExemplarFilter)
except ImportError:  # no OTel SDK, or one without these internals: the public record only
    _SdkHistogram = None  # type: ignore[assignment,misc]

_EMPTY_CONTEXT = Context()
_MAX_KEYS = 20_000  # attribute mappings whose hashed key is kept (per model, endpoint and error type)
_VIEW_MATCH_PARTS = ("_lock", "_attributes_aggregation", "consume_measurement", "_view")


class HistogramRecorder:
    """Records (value, attributes) pairs into one histogram (see the module's docstring)."""

    __slots__ = ("_histogram", "_keys", "_matched", "broken", "fast_records")

    def __init__(self, histogram: Histogram) -> None:
        self._histogram = histogram
        # id(attributes) -> (attributes, the SDK's key for them); the mapping is held so its id stays its own
        self._keys: dict[int, tuple[Mapping[str, str], Any]] = {}
        # (the consumer's reader storages, their view matches): the storages mapping is replaced, never
        # changed, when a reader is added or removed, and a storage's matches never change once made
        self._matched: tuple[object, list[tuple[Any, bool]]] = (None, [])
        self.broken = False  # a surprise in the SDK's internals: the public record from then on
        self.fast_records = 0  # values that went straight to their aggregations (for tests and benchmarks)

    def record(self, values: Iterable[tuple[float, Mapping[str, str]]]) -> None:
        """Record each value with its attributes. The mappings must not change once handed over."""
        matches = self._view_matches()
        if matches is None:
            self._record_public(values)
            return
        histogram = self._histogram
        new = object.__new__
        now = time.time_ns()
        pending = iter(values)
        for value, attributes in pending:
            if not 0 <= value < math.inf:  # negative, infinite or NaN: the SDK's own warning, and no record
                self._record_public(((value, attributes),))
                continue
            reached = False  # whether any view has the value yet (after a fault: is it lost, or in some?)
            try:
                key = self._key(attributes)
                measurement = new(_Measurement)
                fields = measurement.__dict__  # a frozen dataclass: its fields are set as its __init__ does
                fields["value"] = value
                fields["time_unix_nano"] = now
                fields["instrument"] = histogram
                fields["context"] = _EMPTY_CONTEXT
                fields["attributes"] = attributes
                reached = True
                for match, locked in matches:
                    if locked:  # a delta view swaps its aggregations at collection, under its lock
                        with match._lock:
                            aggregation = match._attributes_aggregation.get(key)
                            if aggregation is not None:
                                aggregation.aggregate(measurement, False)
                    else:  # (as the SDK itself does: a view that keeps its aggregations for good)
                        aggregation = match._attributes_aggregation.get(key)
                        if aggregation is not None:
                            aggregation.aggregate(measurement, False)
                    if aggregation is None:  # a new series in this view: made by the SDK (takes the lock)
                        match.consume_measurement(measurement, False)
            except Exception as fault:
                record_fault("metrics.histogram", fault)
                self.broken = True
                if not reached:  # failed before any view had it: the public record gives it to all
                    self._record_public(((value, attributes),))
                self._record_public(pending)  # the rest (a value that failed midway is in some views only)
                return
            self.fast_records += 1

    def _record_public(self, values: Iterable[tuple[float, Mapping[str, str]]]) -> None:
        record = self._histogram.record
        for value, attributes in values:
            try:
                record(value, attributes, _EMPTY_CONTEXT)
            except Exception as fault:  # a broken record must not stop the others
                record_fault("metrics.histogram", fault)

    def _key(self, attributes: Mapping[str, str]) -> Any:
        held = self._keys.get(id(attributes))
        if held is not None and held[0] is attributes:
            return held[1]
        key = _hash_attributes(attributes)
        if len(self._keys) >= _MAX_KEYS:
            self._keys.clear()
        self._keys[id(attributes)] = (attributes, key)
        return key

    def _view_matches(self) -> list[tuple[Any, bool]] | None:
        """The SDK's view matches of the histogram in every reader, each with whether it must be
        locked to aggregate (it drops its aggregations at delta collections: SDK 1.45.2), or None
        where the public record must be used. Checked for each batch: the meter's state may change."""
        if _SdkHistogram is None or self.broken:
            return None
        histogram: Any = self._histogram
        if type(histogram) is not _SdkHistogram:
            histogram = getattr(histogram, "_real_instrument", None)  # the API's proxy, once the SDK is set
            if type(histogram) is not _SdkHistogram:
                return None
        self._histogram = histogram
        try:
            is_enabled = getattr(histogram, "_is_enabled", None)  # the meter's configuration (SDK 1.39+)
            if is_enabled is not None and not is_enabled():
                return None
            consumer = histogram._measurement_consumer
            if type(consumer) is not SynchronousMeasurementConsumer:
                return None
            storages = consumer._reader_storages
            if storages is self._matched[0]:
                return self._matched[1]
            if type(consumer._sdk_config.exemplar_filter) not in _QUIET_FILTERS:
                return None
            matches = [
                (match, bool(getattr(match, "_reset_on_collect", False)))
                for storage in storages.values()
                for match in storage._get_or_init_view_instrument_match(histogram)
            ]
            for match, _locked in matches:
                if not all(hasattr(match, part) for part in _VIEW_MATCH_PARTS):
                    return None
                if match._view._attribute_keys is not None:  # the view keeps only some keys
                    return None
        except Exception as fault:
            record_fault("metrics.histogram", fault)
            self.broken = True
            return None
        self._matched = (storages, matches)
        return matches
