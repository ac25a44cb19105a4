"""`HistogramRecorder`: what the OTel SDK exports is the same as through `Histogram.record`, with the
values taken straight to their aggregations where the SDK's set-up allows, and the public record
wherever it does not."""

from __future__ import annotations

import functools
import inspect
import math
from typing import Any

import pytest
import wrapt
from opentelemetry.metrics._internal import _ProxyMeter
from opentelemetry.sdk.metrics import AlwaysOnExemplarFilter, Histogram, MeterProvider
from opentelemetry.sdk.metrics._internal import measurement as sdk_measurement
from opentelemetry.sdk.metrics._internal.aggregation import _ExplicitBucketHistogramAggregation
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.metrics.view import View

from genai_meter import _sdk_views as sdk_views
from genai_meter._faults import fault_counts
from genai_meter._histogram_records import HistogramRecorder

from ._metric_points import data_points, fresh_faults  # noqa: F401 (a fixture)
from ._recording import first_arguments

pytestmark = pytest.mark.usefixtures("fresh_faults")

BOUNDARIES = [1, 4, 16, 64, 256, 1024, 4096, 16384]
CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "server.address": "api.openai.com",
    "gen_ai.token.type": "input",
}
CHAT_OUT = {**CHAT, "gen_ai.token.type": "output"}
MESSAGES = {**CHAT, "gen_ai.provider.name": "anthropic", "gen_ai.request.model": "claude-sonnet-4-5"}
FAILED = {**CHAT, "error.type": "RateLimitError"}
VALUES: list[tuple[float, dict[str, str]]] = [
    (1200, CHAT),
    (300, CHAT_OUT),
    (0, CHAT),
    (5, MESSAGES),
    (16384, CHAT_OUT),
    (20000, MESSAGES),
    (4, FAILED),
    (1200, CHAT),
]


class _Side:
    """A meter provider with a cumulative and a delta reader, and one histogram on it."""

    def __init__(self, **provider_options: Any) -> None:
        self.cumulative = InMemoryMetricReader()
        self.delta = InMemoryMetricReader(preferred_temporality={Histogram: AggregationTemporality.DELTA})
        self.provider = MeterProvider(metric_readers=[self.cumulative, self.delta], **provider_options)
        self.histogram = self.provider.get_meter("test").create_histogram(
            "gen_ai.client.token.usage", unit="{token}", explicit_bucket_boundaries_advisory=BOUNDARIES
        )

    def points(self) -> list[Any]:
        """Each reader's data points, in a comparable form (start and end times left out)."""
        return [_points(reader) for reader in (self.cumulative, self.delta)]


def _points(reader: InMemoryMetricReader) -> list[tuple[Any, ...]]:
    found = []
    for metric, point in data_points(reader):
        fields = [metric.name, sorted((point.attributes or {}).items())]
        for name in ("count", "sum", "min", "max", "bucket_counts", "explicit_bounds", "value"):
            if hasattr(point, name):
                value = getattr(point, name)
                fields.append((name, tuple(value) if name.endswith("s") else value))
        found.append(tuple(fields))
    return sorted(found, key=repr)


def _record_both(
    values: list[tuple[float, dict[str, str]]], **provider_options: Any
) -> tuple[_Side, _Side, HistogramRecorder]:
    public, recorded = _Side(**provider_options), _Side(**provider_options)
    for value, attributes in values:
        public.histogram.record(value, attributes)
    recorder = HistogramRecorder(recorded.histogram)
    recorder.record(values)
    return public, recorded, recorder


def test_same_points_as_record_in_cumulative_and_delta_readers_over_two_collections() -> None:
    public, recorded, recorder = _record_both(VALUES)
    first = public.points()
    assert recorded.points() == first
    assert recorder.fast_records == len(VALUES)
    cumulative = first[0]
    by_attributes = {tuple(point[1]): point for point in cumulative}
    chat_in = by_attributes[tuple(sorted(CHAT.items()))]
    assert chat_in[2:6] == (("count", 3), ("sum", 2400), ("min", 0), ("max", 1200))
    assert chat_in[6] == ("bucket_counts", (1, 0, 0, 0, 0, 0, 2, 0, 0))  # 0 in (-inf, 1], 1200 in (1024, 4096]
    # a delta reader starts again after a collection (the SDK drops its aggregations); values
    # recorded since land in new ones, made by the SDK's own code
    more = [(7, CHAT), (9, MESSAGES), (11, CHAT)]
    for value, attributes in more:
        public.histogram.record(value, attributes)
    recorder.record(more)
    second = public.points()
    assert recorded.points() == second
    assert sorted(point[2:4] for point in second[1]) == [(("count", 1), ("sum", 9)), (("count", 2), ("sum", 18))]
    assert recorder.fast_records == len(VALUES) + 3


def test_attributes_are_not_cleaned_again_per_value(monkeypatch: pytest.MonkeyPatch) -> None:
    cleaned = first_arguments(monkeypatch, sdk_measurement, "_clean_attribute_value")
    side = _Side()
    HistogramRecorder(side.histogram).record(VALUES)
    assert cleaned == []
    side.histogram.record(1, CHAT)
    assert cleaned == [CHAT]  # (the public record does clean them)


@pytest.mark.skipif(
    "aggregation_cardinality_limit" not in inspect.signature(View).parameters,
    reason="this OTel SDK has no cardinality limit (1.45.1 and older)",
)
def test_cardinality_overflow_is_the_sdks() -> None:
    view = View(instrument_name="gen_ai.client.token.usage", aggregation_cardinality_limit=2)
    values = [(float(n), {**CHAT, "gen_ai.request.model": f"model-{n}"}) for n in range(5)]
    public, recorded, recorder = _record_both(values, views=[view])
    points = public.points()
    assert recorded.points() == points
    assert recorder.fast_records == 5
    assert [point[1] for point in points[0]][-1] == [("otel.metric.overflow", True)]
    assert [point[2] for point in points[0]] == [("count", 1), ("count", 1), ("count", 3)]


@pytest.mark.skipif(
    "aggregation_cardinality_limit" not in inspect.signature(View).parameters,
    reason="this OTel SDK has no cardinality limit (1.45.1 and older)",
)
def test_values_of_a_series_past_the_limit_each_go_to_the_overflow_series() -> None:
    view = View(instrument_name="gen_ai.client.token.usage", aggregation_cardinality_limit=2)
    late = {**CHAT, "gen_ai.request.model": "model-late"}
    values = [(1.0, CHAT), (2.0, CHAT_OUT), (3.0, late), (4.0, CHAT), (5.0, late), (6.0, late)]
    public, recorded, recorder = _record_both(values, views=[view])
    points = public.points()
    assert recorded.points() == points
    overflow = [point for point in points[0] if point[1] == [("otel.metric.overflow", True)]]
    assert [point[2:4] for point in overflow] == [(("count", 3), ("sum", 14.0))]  # the late model's three
    assert recorder.fast_records == len(values)


def test_the_sdks_aggregate_is_mirrored_and_any_other_is_called(monkeypatch: pytest.MonkeyPatch) -> None:
    public, recorded, recorder = _record_both(VALUES)
    assert recorder._mirrored is _ExplicitBucketHistogramAggregation.aggregate
    expected = public.points()
    assert recorded.points() == expected
    # an aggregate whose code is not the one mirrored (a later SDK's, say) is called for each value
    called: list[float] = []
    sdk_aggregate = _ExplicitBucketHistogramAggregation.aggregate

    def other_aggregate(self: Any, measurement: Any, should_sample_exemplar: bool = True) -> None:
        called.append(measurement.value)
        sdk_aggregate(self, measurement, should_sample_exemplar)

    monkeypatch.setattr(_ExplicitBucketHistogramAggregation, "aggregate", other_aggregate)
    other = _Side()
    recorder = HistogramRecorder(other.histogram)
    recorder.record(VALUES)
    assert recorder._mirrored is None
    assert sorted(called) == sorted(value for value, _ in VALUES * 2)  # once in each of the two readers
    assert other.points() == expected


@pytest.mark.parametrize("wrapper", [False, True], ids=["another method", "a wrapper of the SDK's"])
def test_an_aggregate_that_is_not_the_mirrored_one_is_read_once(monkeypatch: pytest.MonkeyPatch, wrapper: bool) -> None:
    sdk_aggregate = _ExplicitBucketHistogramAggregation.aggregate

    def other_aggregate(self: Any, measurement: Any, should_sample_exemplar: bool = True) -> None:
        sdk_aggregate(self, measurement, should_sample_exemplar)

    if wrapper:  # its source as `inspect` reads it (through __wrapped__) is the SDK's own
        other_aggregate = functools.wraps(sdk_aggregate)(other_aggregate)
    read = first_arguments(monkeypatch, sdk_views, "source_digest")
    monkeypatch.setattr(_ExplicitBucketHistogramAggregation, "aggregate", other_aggregate)
    side = _Side()
    recorder = HistogramRecorder(side.histogram)
    recorder.record(VALUES)
    recorder.record(VALUES)
    assert recorder._mirrored is None
    assert read == ([] if wrapper else [other_aggregate])  # once, whatever the number of records
    assert sorted(point[2] for point in side.points()[0]) == [("count", n) for n in (2, 4, 4, 6)]


def test_a_fault_in_the_first_view_leaves_no_value_unrecorded(monkeypatch: pytest.MonkeyPatch) -> None:
    side = _Side()
    recorder = HistogramRecorder(side.histogram)

    def failing_aggregate(*args: Any) -> None:
        raise RuntimeError("surprise")

    # the first value of the series is made by the SDK in the first view; adding the rest fails there
    monkeypatch.setattr(HistogramRecorder, "_aggregate", failing_aggregate)
    recorder.record([(1, CHAT), (2, CHAT), (3, CHAT)])
    assert fault_counts() == {"metrics.histogram": 1} and recorder.broken
    cumulative, delta = ({tuple(point[1]): point[2:4] for point in points} for points in side.points())
    # the first view has all three (1 from the SDK's series, 2 and 3 from the public record); the
    # second never had the 1 (it was added midway, in some views only), and has the rest
    assert cumulative == {tuple(sorted(CHAT.items())): (("count", 3), ("sum", 6))}
    assert delta == {tuple(sorted(CHAT.items())): (("count", 2), ("sum", 5))}


def test_an_aggregate_failing_midway_records_no_value_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    sdk_aggregate = _ExplicitBucketHistogramAggregation.aggregate

    def failing_on_30(self: Any, measurement: Any, should_sample_exemplar: bool = True) -> None:
        if measurement.value == 30:
            raise RuntimeError("surprise")
        sdk_aggregate(self, measurement, should_sample_exemplar)

    side = _Side()
    recorder = HistogramRecorder(side.histogram)
    recorder.record([(1, CHAT)])  # the series exists in both views
    monkeypatch.setattr(_ExplicitBucketHistogramAggregation, "aggregate", failing_on_30)
    recorder.record([(10, CHAT), (20, CHAT), (30, CHAT), (40, CHAT)])
    assert fault_counts() == {"metrics.histogram": 2}  # (the 30 fails the public record too)
    cumulative = {tuple(point[1]): point[2:4] for point in side.points()[0]}
    # 10 and 20 were in the first view when the 30 failed: only the 30 and 40 took the public record
    assert cumulative == {tuple(sorted(CHAT.items())): (("count", 4), ("sum", 71))}


def test_a_wrapt_wrapper_of_the_mirrored_aggregate_is_called(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another instrumentation's `wrapt` wrapper (which compares equal to the function it wraps) is
    not taken for the SDK's method, even once that method was read and held."""
    sdk_aggregate = _ExplicitBucketHistogramAggregation.aggregate
    called: list[float] = []

    def counting(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        called.append(args[0].value)
        return wrapped(*args, **kwargs)

    HistogramRecorder(_Side().histogram).record(VALUES)  # the SDK's own method, read and held first
    wrapper = wrapt.FunctionWrapper(sdk_aggregate, counting)
    monkeypatch.setattr(_ExplicitBucketHistogramAggregation, "aggregate", wrapper)
    side = _Side()
    recorder = HistogramRecorder(side.histogram)
    recorder.record(VALUES)
    assert recorder._mirrored is None
    assert sorted(called) == sorted(value for value, _ in VALUES * 2)


def test_a_value_that_is_not_a_number_takes_the_public_record() -> None:
    side = _Side()
    recorder = HistogramRecorder(side.histogram)
    recorder.record([(None, CHAT), (2, CHAT)])  # type: ignore[list-item]
    assert recorder.fast_records == 1
    assert [point[2:4] for point in side.points()[0]] == [(("count", 1), ("sum", 2))]


@pytest.mark.parametrize(
    "options",
    [
        {"views": [View(instrument_name="gen_ai.client.token.usage", attribute_keys={"gen_ai.request.model"})]},
        {"exemplar_filter": AlwaysOnExemplarFilter()},
    ],
    ids=["view keeping some keys", "always-on exemplars"],
)
def test_set_ups_it_does_not_know_take_the_public_record(options: dict[str, Any]) -> None:
    public, recorded, recorder = _record_both(VALUES, **options)
    assert recorder.fast_records == 0
    points = public.points()
    assert recorded.points() == points
    assert len(points[0]) == (2 if "views" in options else 4)  # the view merges the attribute sets by model


def test_values_the_sdk_refuses_are_refused_the_same_way() -> None:
    values = [(-1, CHAT), (math.inf, CHAT), (math.nan, CHAT), (3, CHAT)]
    public, recorded, recorder = _record_both(values)
    assert recorded.points() == public.points()
    assert [point[2:4] for point in public.points()[0]] == [(("count", 1), ("sum", 3))]
    assert recorder.fast_records == 1


def test_a_fault_inside_is_counted_and_the_values_recorded_publicly(monkeypatch: pytest.MonkeyPatch) -> None:
    side = _Side()
    recorder = HistogramRecorder(side.histogram)
    recorder.record([(1, CHAT)])
    monkeypatch.setattr(HistogramRecorder, "_key", lambda self, attributes: 1 / 0)
    recorder.record([(2, CHAT), (3, CHAT), (4, MESSAGES)])
    assert fault_counts() == {"metrics.histogram": 1}
    assert recorder.broken and recorder.fast_records == 1
    cumulative = {tuple(point[1]): point[2:4] for point in side.points()[0]}
    # the value that failed before any view had it, and the ones after it, take the public record
    assert cumulative == {
        tuple(sorted(CHAT.items())): (("count", 3), ("sum", 6)),
        tuple(sorted(MESSAGES.items())): (("count", 1), ("sum", 4)),
    }


def test_the_apis_proxy_histogram_records_once_the_sdk_is_set() -> None:
    proxy = _ProxyMeter("test")
    histogram = proxy.create_histogram("gen_ai.client.token.usage", explicit_bucket_boundaries_advisory=BOUNDARIES)
    recorder = HistogramRecorder(histogram)
    recorder.record([(1, CHAT)])  # no SDK yet: nothing to record into
    side = _Side()
    proxy.on_set_meter_provider(side.provider)
    recorder.record([(2, CHAT), (3, CHAT)])
    assert recorder.fast_records == 2
    assert [point[2:4] for point in side.points()[0]] == [(("count", 2), ("sum", 5))]


def test_a_reader_added_later_gets_what_is_recorded_after_it() -> None:
    public, recorded = _Side(), _Side()
    recorder = HistogramRecorder(recorded.histogram)
    for value, attributes in VALUES:
        public.histogram.record(value, attributes)
    recorder.record(VALUES)
    late_public, late_recorded = InMemoryMetricReader(), InMemoryMetricReader()
    public.provider.add_metric_reader(late_public)
    recorded.provider.add_metric_reader(late_recorded)
    more = [(7, CHAT), (9, MESSAGES)]
    for value, attributes in more:
        public.histogram.record(value, attributes)
    recorder.record(more)
    assert _points(late_recorded) == _points(late_public)
    assert sorted(point[3] for point in _points(late_public)) == [("sum", 7), ("sum", 9)]
    assert recorded.points() == public.points()
    assert recorder.fast_records == len(VALUES) + 2


# Values spread over every bucket, on and beside the boundaries, ints and floats (equal ones of both
# types, where min and max keep the first), and floats whose sum depends on the order they are added in.
SPREAD = [0, 1, 1.0, 0.5, 4, 3.999, 16, 16.0, 17, 64, 255.5, 256, 1024, 1025, 4096, 16384, 16385, 10**6]
ORDERED_FLOATS = [0.1, 0.2, 0.3, 1e16, 1.0, 3.0, 0.7, 1e-9, 2.5e15, 0.30000000000000004]


def test_groups_over_every_bucket_export_the_same_points_as_record() -> None:
    values = [(value, CHAT) for value in SPREAD]
    values += [(value, CHAT_OUT) for value in ORDERED_FLOATS]
    values += [(value, MESSAGES) for value in reversed(SPREAD)]
    values += [(value, CHAT) for value in ORDERED_FLOATS]  # (after the ints: the sum turns float)
    public, recorded, recorder = _record_both(values)
    assert recorded.points() == public.points()
    assert recorder.fast_records == len(values)
    more = [(value, CHAT_OUT) for value in SPREAD] + [(value, CHAT) for value in reversed(ORDERED_FLOATS)]
    for value, attributes in more:  # (the delta reader's aggregations were dropped; the others grow)
        public.histogram.record(value, attributes)
    recorder.record(more)
    assert recorded.points() == public.points()


@pytest.mark.parametrize("refused", [-1, -0.5, math.inf, -math.inf, math.nan, True])
@pytest.mark.parametrize("position", [0, 1, 3])
def test_a_value_the_sdk_refuses_anywhere_in_a_group_is_refused_the_same_way(refused: float, position: int) -> None:
    """A group's values are checked at once: one refused value (a bool is recorded, but publicly)
    sends the group's values one by one through the check, wherever it is in the group."""
    group = [2.0, 3, 5.5]
    group.insert(position, refused)
    values = [(value, CHAT) for value in group] + [(7, MESSAGES)]
    public, recorded, recorder = _record_both(values)
    assert recorded.points() == public.points()
    assert recorder.fast_records == 4


def test_values_whose_sum_overflows_are_each_checked_and_recorded() -> None:
    values = [(1e308, CHAT), (1e308, CHAT), (1, CHAT), (2.5, MESSAGES)]
    public, recorded, recorder = _record_both(values)
    assert recorded.points() == public.points()
    assert recorder.fast_records == 4
    assert {tuple(point[1]): point[3] for point in public.points()[0]}[tuple(sorted(CHAT.items()))] == ("sum", math.inf)


def test_record_groups_is_record_of_the_same_pairs() -> None:
    """Groups as the deferred records hand them over: one mapping may be in more than one group."""
    groups: list[tuple[dict[str, str], list[float]]] = [
        (CHAT, [1200, 0.25, 7]),
        (MESSAGES, [5, -1, 20000]),
        (CHAT, [0.125, 4096]),
        (FAILED, [math.nan]),
    ]
    public, recorded = _Side(), _Side()
    for attributes, values in groups:
        for value in values:
            public.histogram.record(value, attributes)
    recorder = HistogramRecorder(recorded.histogram)
    recorder.record_groups(groups)
    assert recorded.points() == public.points()
    assert recorder.fast_records == 7
