"""`SumObserver`: what the OTel SDK exports from an observable counter is the same as from plain
observations, with the sums set straight into their aggregations where the SDK's set-up allows,
and the public observations wherever it does not."""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable
from typing import Any

import pytest
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.metrics._internal import _ProxyMeter
from opentelemetry.sdk.metrics import AlwaysOnExemplarFilter, MeterProvider, ObservableCounter
from opentelemetry.sdk.metrics._internal import measurement as sdk_measurement
from opentelemetry.sdk.metrics._internal.aggregation import _SumAggregation
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader, MetricReader
from opentelemetry.sdk.metrics.view import LastValueAggregation, View
from opentelemetry.sdk.trace import TracerProvider

from genai_meter import _sdk_views as sdk_views
from genai_meter._faults import fault_counts
from genai_meter._identity_cache import IdentityCache
from genai_meter._metrics import CallMetrics
from genai_meter._sum_records import SumObserver

from ._metric_points import data_points, fresh_faults  # noqa: F401 (a fixture)
from ._recording import first_arguments

pytestmark = pytest.mark.usefixtures("fresh_faults")

NAME = "genai_meter.cost.usd"
ALICE = {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini", "user.id": "alice"}
BOB = {**ALICE, "user.id": "bob"}
CAROL = {**ALICE, "user.id": "carol"}


class _Side:
    """A meter provider with the given readers and one observable counter on it, whose callback
    hands the current sums to a `SumObserver` (`fast`) or returns plain observations."""

    def __init__(self, fast: bool, readers: list[MetricReader] | None = None, **provider_options: Any) -> None:
        self.readers = readers if readers is not None else [InMemoryMetricReader()]
        self.provider = MeterProvider(metric_readers=self.readers, **provider_options)
        self.sums: dict[str, tuple[dict[str, str], float]] = {}
        self.observer: SumObserver | None = None
        counter = self.provider.get_meter("test").create_observable_counter(NAME, callbacks=[self._observe])
        if fast:
            self.observer = SumObserver(counter)

    def _observe(self, _options: CallbackOptions) -> Iterable[Observation]:
        series = list(self.sums.values())
        if self.observer is None:
            return [Observation(value, attributes) for attributes, value in series]
        return self.observer.observations(series)

    def add(self, attributes: dict[str, str], amount: float) -> None:
        # the same mapping each time, as genai-meter's sums hand over
        held, total = self.sums.get(attributes["user.id"], (attributes, 0.0))
        self.sums[attributes["user.id"]] = (held, total + amount)

    def points(self) -> list[list[tuple[Any, ...]]]:
        """Each reader's data points, in a comparable form (times left out)."""
        return [_points(reader) for reader in self.readers]  # type: ignore[arg-type]


def _points(reader: InMemoryMetricReader) -> list[tuple[Any, ...]]:
    found = []
    for metric, point in data_points(reader):
        exemplars = tuple(exemplar.value for exemplar in point.exemplars)
        value = getattr(point, "value", None)
        found.append((metric.name, sorted((point.attributes or {}).items()), value, exemplars))
    return sorted(found, key=repr)


def _both(**options: Any) -> tuple[_Side, _Side]:
    readers = options.pop("readers", None)
    public = _Side(False, readers() if readers else None, **options)
    fast = _Side(True, readers() if readers else None, **options)
    return public, fast


def _add(sides: tuple[_Side, ...], attributes: dict[str, str], amount: float) -> None:
    for side in sides:
        side.add(attributes, amount)


def _value_of(points: list[tuple[Any, ...]], attributes: dict[str, str]) -> Any:
    return next(point[2] for point in points if point[1] == sorted(attributes.items()))


def test_same_points_as_observations_over_collections_and_new_series_made_by_the_sdk() -> None:
    public, fast = _both()
    _add((public, fast), ALICE, 0.25)
    _add((public, fast), BOB, 1.5)
    assert fast.points() == public.points()
    assert fast.observer is not None and fast.observer.fast_observations == 0  # new series: the SDK makes them
    _add((public, fast), ALICE, 0.125)
    _add((public, fast), CAROL, 2.0)  # new: the SDK's way again
    second = public.points()
    assert fast.points() == second
    assert fast.observer.fast_observations == 2
    assert _value_of(second[0], ALICE) == 0.375 and _value_of(second[0], CAROL) == 2.0
    third = public.points()  # nothing added: the same cumulative sums
    assert fast.points() == third == second
    assert fast.observer.fast_observations == 5


def test_a_delta_reader_gets_the_sdks_differences() -> None:
    def readers() -> list[MetricReader]:
        return [InMemoryMetricReader(preferred_temporality={ObservableCounter: AggregationTemporality.DELTA})]

    public, fast = _both(readers=readers)
    _add((public, fast), ALICE, 1.0)
    assert fast.points() == public.points()
    _add((public, fast), ALICE, 0.5)
    _add((public, fast), BOB, 3.0)
    second = public.points()
    assert fast.points() == second
    assert _value_of(second[0], ALICE) == 0.5  # the difference since the last collection
    _add((public, fast), BOB, 1.0)
    third = public.points()
    assert fast.points() == third
    assert _value_of(third[0], ALICE) == 0 and _value_of(third[0], BOB) == 1.0
    assert fast.observer is not None and fast.observer.fast_observations == 3


def test_attributes_are_not_cleaned_at_each_collection(monkeypatch: pytest.MonkeyPatch) -> None:
    cleaned = first_arguments(monkeypatch, sdk_measurement, "_clean_attribute_value")
    side = _Side(True)
    side.add(ALICE, 1.0)
    side.points()
    assert cleaned == [ALICE]  # the series' first observation is the SDK's (cleaned whole)
    cleaned.clear()
    side.add(ALICE, 1.0)
    assert _value_of(side.points()[0], ALICE) == 2.0
    assert cleaned == []


def test_two_readers_take_the_public_observations() -> None:
    # the SDK feeds only the reader collecting, which a callback cannot tell
    public, fast = _both(readers=lambda: [InMemoryMetricReader(), InMemoryMetricReader()])
    for amount in (1.0, 2.0, 4.0):
        _add((public, fast), ALICE, amount)
        _add((public, fast), BOB, amount / 2)
        assert fast.points() == public.points()
    assert fast.observer is not None and fast.observer.fast_observations == 0
    assert _value_of(fast.points()[1], ALICE) == 7.0


@pytest.mark.parametrize(
    "options",
    [
        {"views": [View(instrument_name=NAME, attribute_keys={"user.id"})]},
        {"views": [View(instrument_name=NAME, aggregation=LastValueAggregation())]},
        {"exemplar_filter": AlwaysOnExemplarFilter()},
    ],
    ids=["view keeping some keys", "view with another aggregation", "always-on exemplars"],
)
def test_set_ups_it_does_not_know_take_the_public_observations(options: dict[str, Any]) -> None:
    public, fast = _both(**options)
    for amount in (1.0, 2.0):
        _add((public, fast), ALICE, amount)
        _add((public, fast), BOB, amount)
        points = public.points()
        assert fast.points() == points
    assert fast.observer is not None and fast.observer.fast_observations == 0
    assert len(points[0]) == 2 and {point[2] for point in points[0]} == {3.0}


def test_a_sampled_span_current_at_the_collection_gets_its_exemplars() -> None:
    public, fast = _both()
    _add((public, fast), ALICE, 1.0)
    assert fast.points() == public.points()
    _add((public, fast), ALICE, 1.0)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("collecting"):  # the trace-based filter samples this one
        points = public.points()
        assert fast.points() == points
    assert points[0][0][3] == (2.0,)
    assert fast.observer is not None and fast.observer.fast_observations == 0
    _add((public, fast), ALICE, 1.0)
    assert fast.points() == public.points()  # no span current: straight in again
    assert fast.observer.fast_observations == 1


@pytest.mark.parametrize("bad", [math.inf, math.nan])
def test_a_value_that_is_not_finite_is_skipped_as_the_sdk_skips_it(bad: float) -> None:
    public, fast = _both()
    _add((public, fast), ALICE, 1.0)
    _add((public, fast), BOB, 1.0)
    assert fast.points() == public.points()
    _add((public, fast), BOB, bad)
    _add((public, fast), ALICE, 1.0)
    points = public.points()
    assert fast.points() == points
    assert [point[1] for point in points[0]] == [sorted(ALICE.items())] and points[0][0][2] == 2.0
    assert fast.observer is not None and fast.observer.fast_observations == 0


def test_a_sum_aggregation_whose_code_differs_takes_the_public_observations(monkeypatch: pytest.MonkeyPatch) -> None:
    public, fast = _both()
    _add((public, fast), ALICE, 1.0)
    assert fast.points() == public.points()
    called: list[float] = []
    sdk_aggregate = _SumAggregation.aggregate

    def other_aggregate(self: Any, measurement: Any, should_sample_exemplar: bool = True) -> None:
        called.append(measurement.value)
        sdk_aggregate(self, measurement, should_sample_exemplar)

    monkeypatch.setattr(_SumAggregation, "aggregate", other_aggregate)
    _add((public, fast), ALICE, 1.0)
    assert fast.points() == public.points()
    assert called == [2.0, 2.0]  # the public side's and the fast side's, through the SDK
    assert fast.observer is not None and fast.observer.fast_observations == 0


def test_the_methods_are_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    read = first_arguments(monkeypatch, sdk_views, "source_digest")
    monkeypatch.setattr(sdk_views, "_set_verdicts", {})
    monkeypatch.setattr(sdk_views, "_verdicts", IdentityCache(100))
    side = _Side(True)
    for _ in range(4):
        side.add(ALICE, 1.0)
        side.points()
    assert read == [_SumAggregation.aggregate, _SumAggregation.collect]
    assert side.observer is not None and side.observer.fast_observations == 3


def test_a_fault_inside_is_counted_and_the_sums_observed_publicly(monkeypatch: pytest.MonkeyPatch) -> None:
    public, fast = _both()
    _add((public, fast), ALICE, 1.0)
    assert fast.points() == public.points()

    def failing(*args: Any) -> None:
        raise RuntimeError("surprise")

    monkeypatch.setattr(SumObserver, "_aggregations", failing)
    for amount in (1.0, 2.0):
        _add((public, fast), ALICE, amount)
        _add((public, fast), BOB, amount)
        assert fast.points() == public.points()
    assert fault_counts() == {"metrics.sum": 1}
    assert fast.observer is not None and fast.observer.broken and fast.observer.fast_observations == 0
    assert _value_of(fast.points()[0], ALICE) == 4.0


@pytest.mark.skipif(
    "aggregation_cardinality_limit" not in inspect.signature(View).parameters,
    reason="this OTel SDK has no cardinality limit (1.45.1 and older)",
)
def test_series_past_the_cardinality_limit_go_to_the_sdks_overflow_series() -> None:
    public, fast = _both(views=[View(instrument_name=NAME, aggregation_cardinality_limit=2)])
    for amount in (1.0, 2.0):
        for attributes in (ALICE, BOB, CAROL):
            _add((public, fast), attributes, amount)
        points = public.points()
        assert fast.points() == points
    assert [point[1] for point in points[0]][-1] == [("otel.metric.overflow", True)]
    assert fast.observer is not None and fast.observer.fast_observations == 2  # alice and bob, the second time


def test_the_apis_proxy_counter_is_found_once_the_sdk_is_set() -> None:
    proxy = _ProxyMeter("test")
    sums: list[tuple[dict[str, str], float]] = [(ALICE, 1.0)]
    observer: list[SumObserver] = []
    counter = proxy.create_observable_counter(NAME, callbacks=[lambda _options: observer[0].observations(sums)])
    observer.append(SumObserver(counter))
    reader = InMemoryMetricReader()
    proxy.on_set_meter_provider(MeterProvider(metric_readers=[reader]))
    assert _value_of(_points(reader), ALICE) == 1.0
    sums[0] = (ALICE, 3.0)
    assert _value_of(_points(reader), ALICE) == 3.0
    assert observer[0].fast_observations == 1


def test_call_metrics_sums_go_straight_in_after_their_first_collection() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    metrics = CallMetrics(provider.get_meter("genai_meter"), label_cap=100, user_labels=True, tenant_labels=True)
    key = metrics.label_key("openai", "gpt-4o-mini", "chat", "search", "acme", "alice")
    metrics.requests.add((*key, "ok"), 1)
    metrics.cost.add(key, 0.001)
    _points(reader)
    metrics.requests.add((*key, "ok"), 1)
    metrics.cost.add(key, 0.002)
    points = {(point[0], point[2]) for point in _points(reader)}
    assert ("genai_meter.requests", 2) in points
    assert any(name == "genai_meter.cost.usd" and math.isclose(value, 0.003, abs_tol=1e-15) for name, value in points)
    assert metrics.requests.observer is not None and metrics.requests.observer.fast_observations == 1
    assert metrics.cost.observer is not None and metrics.cost.observer.fast_observations == 1
