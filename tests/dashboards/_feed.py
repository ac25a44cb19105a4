"""A tiny app with known spend: a real OTel MeterProvider + PrometheusMetricReader on 127.0.0.1.

It publishes the same metric names and labels as genai-meter (all from `genai_meter.names`), the way
the real app does: no counter series before its first event, and a series appears already holding
what it counted (a user's first call: its cost, not 0). `first_calls()` makes every series appear
with part of its known total, `spend()` moves it to the total; a label set with nothing to count
(bob was never blocked) never appears. So every counter series is born inside the test's range, and
a range panel must report its whole value: increase() alone misses whatever the first scrape saw.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CollectorRegistry, start_http_server

from genai_meter import names
from genai_meter._prometheus_server import free_port


@dataclass(frozen=True)
class Call:
    provider: str
    model: str
    operation: str
    feature: str
    tenant: str
    user: str
    cost: float
    tokens: dict[str, int]
    outcomes: dict[str, int]
    duration: float

    def labels(self) -> dict[str, str]:
        return {
            names.LABEL_PROVIDER: self.provider,
            names.LABEL_MODEL: self.model,
            names.LABEL_OPERATION: self.operation,
            names.LABEL_FEATURE: self.feature,
            names.LABEL_TENANT: self.tenant,
            names.LABEL_USER: self.user,
        }

    def semconv(self, token_type: str | None = None) -> dict[str, str]:
        attrs = {
            names.OPERATION_NAME: self.operation,
            names.PROVIDER_NAME: self.provider,
            names.REQUEST_MODEL: self.model,
        }
        if token_type is not None:
            attrs[names.TOKEN_TYPE] = token_type
        return attrs


def _tokens(i: int, o: int, cr: int, cw: int, r: int) -> dict[str, int]:
    return dict(zip(names.TOKEN_TYPES, (i, o, cr, cw, r), strict=True))


def _outcomes(ok: int, error: int, blocked: int, unpriced: int) -> dict[str, int]:
    return dict(zip(names.OUTCOMES, (ok, error, blocked, unpriced), strict=True))


CALLS = (
    Call(
        "openai",
        "gpt-4o",
        "chat",
        "support",
        "acme",
        "alice",
        1.234567891,
        _tokens(12000, 3000, 4000, 0, 0),
        _outcomes(10, 1, 2, 0),
        0.7,
    ),
    Call(
        "openai",
        "gpt-4o",
        "chat",
        "summarise",
        "acme",
        "alice",
        2.0,
        _tokens(30000, 5000, 10000, 0, 1000),
        _outcomes(20, 0, 0, 0),
        1.9,
    ),
    Call(
        "anthropic",
        "claude-sonnet-4",
        "chat",
        "summarise",
        "acme",
        "bob",
        0.5,
        _tokens(8000, 2000, 3000, 1000, 0),
        _outcomes(5, 1, 0, 0),
        2.4,
    ),
    Call(
        "openai",
        "gpt-4o-mini",
        "chat",
        "support",
        "globex",
        "carol",
        0.000123456,
        _tokens(900, 100, 0, 0, 0),
        _outcomes(3, 0, 0, 1),
        0.3,
    ),
)
UNPRICED = {((names.LABEL_PROVIDER, "openai"), (names.LABEL_MODEL, "gpt-mystery")): 1}

# (budget, scope value) -> (limit, spend before, spend after): alice over her limit, acme well under.
BUDGETS = {
    ("daily-user", "alice"): (3.0, 0.0, 3.234567891),
    ("monthly-tenant", "acme"): (100.0, 1.0, 3.734567891),
}
CROSSINGS = {
    ("daily-user", "alice", "75"): 1,
    ("daily-user", "alice", "90"): 1,
    ("daily-user", "alice", "100"): 1,
}
BLOCKED = {("daily-user", "alice"): 2}


def known_spend_by_user() -> dict[tuple[str, str], float]:
    spend: dict[tuple[str, str], float] = {}
    for call in CALLS:
        key = (call.tenant, call.user)
        spend[key] = spend.get(key, 0.0) + call.cost
    return spend


class KnownSpendApp:
    """Serves /metrics on 127.0.0.1:<port>: no counter series at first, then `first_calls()`, `spend()`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reader = PrometheusMetricReader(registry=self.registry)
        self.provider = MeterProvider(metric_readers=[self.reader])
        self._started = threading.Event()
        self._spent = threading.Event()
        meter = self.provider.get_meter("genai_meter", "0.0.0-test")

        def counter(metric: names.Metric, callback: object) -> None:
            meter.create_observable_counter(metric.otel_name, [callback], unit=metric.unit)  # type: ignore[list-item]

        def gauge(metric: names.Metric, callback: object) -> None:
            meter.create_observable_gauge(metric.otel_name, [callback], unit=metric.unit)  # type: ignore[list-item]

        counter(names.COST, self._cost)
        counter(names.TOKENS, self._tokens)
        counter(names.REQUESTS, self._requests)
        counter(names.UNPRICED_CALLS, self._unpriced)
        counter(names.BUDGET_THRESHOLD_CROSSINGS, self._crossings)
        counter(names.BUDGET_BLOCKED, self._blocked)
        gauge(names.BUDGET_LIMIT, self._limit)
        gauge(names.BUDGET_SPEND, self._budget_spend)
        self.token_usage = meter.create_histogram(
            names.TOKEN_USAGE.otel_name,
            unit=names.TOKEN_USAGE.unit,
            explicit_bucket_boundaries_advisory=names.TOKEN_USAGE_BUCKETS,
        )
        self.duration = meter.create_histogram(
            names.OPERATION_DURATION.otel_name,
            unit=names.OPERATION_DURATION.unit,
            explicit_bucket_boundaries_advisory=names.OPERATION_DURATION_BUCKETS,
        )
        self._record_histograms()
        self.port = free_port()
        self._server, self._thread = start_http_server(self.port, addr="127.0.0.1", registry=self.registry)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def first_calls(self) -> None:
        """Every counter series appears, holding part of its known total (at least one event)."""
        self._started.set()

    def spend(self) -> None:
        """Every counter series reaches its known total."""
        self._record_histograms()
        self._started.set()
        self._spent.set()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.provider.shutdown()

    # --- observations ---------------------------------------------------------------------------
    def _observe(self, total: float, labels: dict[str, str]) -> list[Observation]:
        """No series before the first calls nor for a label set with nothing counted, as the real app."""
        if not total or not self._started.is_set():
            return []
        if self._spent.is_set():
            return [Observation(total, labels)]
        first = total / 2 if isinstance(total, float) else max(1, int(total) // 2)
        return [Observation(first, labels)]

    def _record_histograms(self) -> None:
        for call in CALLS:
            self.duration.record(call.duration, call.semconv())
            for token_type in (names.TOKEN_INPUT, names.TOKEN_OUTPUT):
                self.token_usage.record(call.tokens[token_type], call.semconv(token_type))

    def _cost(self, _: CallbackOptions) -> Iterable[Observation]:
        return [o for c in CALLS for o in self._observe(c.cost, c.labels())]

    def _tokens(self, _: CallbackOptions) -> Iterable[Observation]:
        return [
            o
            for c in CALLS
            for t, n in c.tokens.items()
            for o in self._observe(n, {**c.labels(), names.LABEL_TOKEN_TYPE: t})
        ]

    def _requests(self, _: CallbackOptions) -> Iterable[Observation]:
        return [
            obs
            for c in CALLS
            for o, n in c.outcomes.items()
            for obs in self._observe(n, {**c.labels(), names.LABEL_OUTCOME: o})
        ]

    def _unpriced(self, _: CallbackOptions) -> Iterable[Observation]:
        return [o for labels, n in UNPRICED.items() for o in self._observe(n, dict(labels))]

    def _crossings(self, _: CallbackOptions) -> Iterable[Observation]:
        return [
            o
            for (b, s, t), n in CROSSINGS.items()
            for o in self._observe(
                n, {names.LABEL_BUDGET: b, names.LABEL_SCOPE_VALUE: s, names.LABEL_THRESHOLD: t}
            )
        ]

    def _blocked(self, _: CallbackOptions) -> Iterable[Observation]:
        return [
            o
            for (b, s), n in BLOCKED.items()
            for o in self._observe(n, {names.LABEL_BUDGET: b, names.LABEL_SCOPE_VALUE: s})
        ]

    def _limit(self, _: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(limit, {names.LABEL_BUDGET: b, names.LABEL_SCOPE_VALUE: s})
            for (b, s), (limit, _before, _after) in BUDGETS.items()
        ]

    def _budget_spend(self, _: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(
                after if self._spent.is_set() else before, {names.LABEL_BUDGET: b, names.LABEL_SCOPE_VALUE: s}
            )
            for (b, s), (_limit, before, after) in BUDGETS.items()
        ]
