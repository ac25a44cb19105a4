"""Faults around genai-meter, each made real: the app's call behaves as uninstrumented, nothing that
could be kept is lost, and the fault is counted.

Telemetry backends (an OTLP endpoint refusing connections, one answering slowly), the ledger database
and the budget store going away and coming back, the pricing file deleted or corrupted while running,
and a provider that breaks streams, sends malformed SSE or JSON, or reports invalid usage.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import redis
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    InMemoryMetricReader,
    MetricExportResult,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult

import genai_meter
from genai_meter import names
from genai_meter._config import ConfigError
from genai_meter._faults import fault_counts, reset_faults
from genai_meter._runtime import configure, get_runtime, reset_runtime
from genai_meter.budgets import BudgetExceeded
from genai_meter.instrumentation.openai import OpenAIInstrumentor

from ..conftest import Telemetry, ThrowawayRedis, fake_provider_settings, free_port
from ..openai.test_chat import MESSAGES, MINI_IN, MINI_OUT, client, usage_headers
from .conftest import SlowEndpoint

USAGE = {"prompt_tokens": 1000, "completion_tokens": 500}
COST = 1000 * MINI_IN + 500 * MINI_OUT


def view(completion: Any) -> Any:
    """What the app reads from a completion, minus the per-response id and time."""
    return (
        [choice.model_dump() for choice in completion.choices],
        completion.usage.model_dump() if completion.usage is not None else None,
        completion.model,
    )


def bare_view(sdk: openai.OpenAI, headers: dict[str, str], model: str = "gpt-4o-mini") -> Any:
    with suppress_instrumentation():
        return view(sdk.chat.completions.create(model=model, messages=MESSAGES, extra_headers=headers))


def points(reader: InMemoryMetricReader, metric_name: str) -> list[tuple[dict[str, Any], Any]]:
    data = reader.get_metrics_data()
    found = []
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == metric_name:
                    found += [(dict(p.attributes or {}), getattr(p, "value", p)) for p in metric.data.data_points]
    return found


# --- OTLP endpoint refusing connections, or answering slowly -------------------------------------


class HeldSpanExporter(OTLPSpanExporter):
    """The real OTLP/HTTP exporter; after its export fails it keeps the exporting thread until
    released, so the test knows the exporter is busy (failed, retrying, waiting) while the app calls."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.results: list[SpanExportResult] = []
        self.first_thread: threading.Thread | None = None
        self.finished = threading.Event()
        self.release = threading.Event()
        self.inside = False

    def export(self, spans: Any) -> SpanExportResult:
        self.inside = True
        if self.first_thread is None:
            self.first_thread = threading.current_thread()
        try:
            result = super().export(spans)
            self.results.append(result)
            self.finished.set()
            self.release.wait(20)
            return result
        finally:
            self.inside = False


class RecordingMetricExporter(OTLPMetricExporter):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.results: list[MetricExportResult] = []
        self.threads: set[str] = set()
        self.finished = threading.Event()

    def export(self, metrics_data: Any, timeout_millis: float | None = None, **kwargs: Any) -> MetricExportResult:
        self.threads.add(threading.current_thread().name)
        result = super().export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        self.results.append(result)
        self.finished.set()
        return result


def _otlp_case(
    fake_provider: Any, monkeypatch: pytest.MonkeyPatch, port: int, wait_for_export: threading.Event | None
) -> None:
    # The exporters' own counters (otel.sdk.exporter.*) count the failed exports.
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    reader = InMemoryMetricReader()
    metric_exporter = RecordingMetricExporter(endpoint=f"http://127.0.0.1:{port}/v1/metrics", timeout=1)
    meter_provider = MeterProvider(
        metric_readers=[PeriodicExportingMetricReader(metric_exporter, export_interval_millis=100), reader]
    )
    span_exporter = HeldSpanExporter(
        endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout=1, meter_provider=meter_provider
    )
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter, schedule_delay_millis=10))
    reset_faults()
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        configure(**fake_provider_settings(fake_provider))
        sdk = client(fake_provider)
        headers = usage_headers(USAGE)
        expected = bare_view(sdk, headers)
        first = sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=headers)
        assert view(first) == expected
        if wait_for_export is not None:
            assert wait_for_export.wait(30), "the exporter never reached the endpoint"
            assert span_exporter.inside  # the export of the first span is stuck on the network
        else:
            assert span_exporter.finished.wait(30), "the span exporter never ran"
            assert span_exporter.results == [SpanExportResult.FAILURE]
        # The exporter's thread is busy with the failed (or hanging) export; the app's calls go on.
        for _ in range(20):
            completion = sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=headers)
            assert view(completion) == expected
            assert span_exporter.inside
        assert span_exporter.first_thread is not None
        assert span_exporter.first_thread is not threading.main_thread()
        assert span_exporter.finished.wait(30)
        assert span_exporter.results[0] == SpanExportResult.FAILURE
        span_exporter.release.set()
        assert isinstance(tracer_provider.force_flush(timeout_millis=10_000), bool)  # returns

        assert metric_exporter.finished.wait(30), "the metric exporter never ran"
        assert MetricExportResult.FAILURE in metric_exporter.results
        assert threading.main_thread().name not in metric_exporter.threads

        # Our metrics are intact in the other reader of the same MeterProvider.
        requests = points(reader, names.REQUESTS.otel_name)
        assert sum(v for a, v in requests if a[names.LABEL_OUTCOME] == names.OUTCOME_OK) == 21
        assert sum(v for a, v in requests if a[names.LABEL_OUTCOME] != names.OUTCOME_OK) == 0
        tokens = points(reader, names.TOKENS.otel_name)
        assert sum(v for a, v in tokens if a[names.LABEL_TOKEN_TYPE] == "input") == 21 * 1000
        assert sum(v for a, v in tokens if a[names.LABEL_TOKEN_TYPE] == "output") == 21 * 500
        cost = sum(v for _a, v in points(reader, names.COST.otel_name))
        assert cost == pytest.approx(21 * COST, abs=1e-9)
        # The failed export is counted by the exporter's own metric, with its error type.
        exported = points(reader, "otel.sdk.exporter.span.exported")
        assert sum(v for a, v in exported if "error.type" in a) >= 1
        assert fault_counts() == {}  # nothing of genai-meter's own faulted
    finally:
        span_exporter.release.set()
        instrumentor.uninstrument()
        reset_runtime()
        tracer_provider.shutdown()
        meter_provider.shutdown(timeout_millis=5_000)


def test_otlp_endpoint_refusing_connections(fake_provider: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _otlp_case(fake_provider, monkeypatch, free_port(), None)


def test_otlp_endpoint_answering_slowly(
    fake_provider: Any, monkeypatch: pytest.MonkeyPatch, slow_endpoint: SlowEndpoint
) -> None:
    _otlp_case(fake_provider, monkeypatch, slow_endpoint.port, slow_endpoint.got_traces)


# --- ledger database away and back ---------------------------------------------------------------


def test_ledger_database_locked_then_back(
    telemetry: Telemetry, fake_provider: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # the spool file goes here
    database = tmp_path / "ledger.sqlite3"
    configure(**fake_provider_settings(fake_provider, ledger_url=f"sqlite:///{database}"))
    ledger = get_runtime().ledger
    assert ledger is not None
    sdk = client(fake_provider)
    headers = usage_headers(USAGE)
    expected = bare_view(sdk, headers)

    def calls(n: int) -> None:
        for i in range(n):
            with genai_meter.attribute(user=f"u{i}"):
                completion = sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=headers)
            assert view(completion) == expected

    calls(1)
    assert ledger.flush(10)
    assert (ledger.rows_written, ledger.rows_spooled) == (1, 0)

    holder = sqlite3.connect(database, timeout=0, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # the database is away for writers
    try:
        calls(10)
        assert ledger.flush(30)  # the writer gave up on the lock and spooled the batch
        assert ledger.rows_spooled == 10
        assert ledger.rows_written == 1
        assert telemetry.total(names.LEDGER_SPOOLED.otel_name) == 10
        assert ledger.faults >= 1
    finally:
        holder.execute("COMMIT")
        holder.close()

    calls(5)  # back: the spool is replayed before (or after) these
    ledger.close()
    with sqlite3.connect(database) as check:
        (rows,) = check.execute("SELECT count(*) FROM genai_meter_calls").fetchone()
        (distinct,) = check.execute("SELECT count(DISTINCT request_id) FROM genai_meter_calls").fetchone()
    assert rows == distinct == 16  # every call once: none lost, none doubled by the replay
    assert ledger.rows_written == 16
    assert telemetry.total(names.REQUESTS.otel_name, outcome=names.OUTCOME_OK) == 16


# --- budget store (Redis) away and back ----------------------------------------------------------


def test_redis_budget_store_away_and_back(
    telemetry: Telemetry, fake_provider: Any, throwaway_redis: ThrowawayRedis
) -> None:
    from genai_meter.budgets._guard import _STORE_RETRY_S

    budgets = {
        "store": throwaway_redis.url,
        "on_store_error": "open",
        "store_timeout_s": 0.2,
        "policies": [{"name": "per-user", "scope": "user", "max_requests": 2, "mode": "hard"}],
    }
    configure(**fake_provider_settings(fake_provider, budgets=budgets))
    sdk = client(fake_provider)
    headers = usage_headers(USAGE)
    expected = bare_view(sdk, headers)

    def call(user: str) -> Any:
        with genai_meter.attribute(user=user):
            return view(sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=headers))

    def store_errors() -> float:
        return telemetry.total(names.BUDGET_STORE_ERRORS.otel_name, outcome="open")

    assert call("u1") == expected
    assert call("u1") == expected
    with pytest.raises(BudgetExceeded):
        call("u1")  # the budget is enforced
    assert store_errors() == 0

    throwaway_redis.stop()
    for _ in range(5):
        assert call("u1") == expected  # fail open: the app's calls go through, unreserved
    assert call("u2") == expected
    assert store_errors() == 6
    assert telemetry.total(names.REQUESTS.otel_name, outcome=names.OUTCOME_OK) == 8
    assert fault_counts() == {}  # counted as store errors, not as faults of genai-meter

    throwaway_redis.start()  # a fresh, empty server on the same port
    time.sleep(_STORE_RETRY_S + 0.1)  # past the guard's pause before it tries the store again
    # The calls sent in the outage were kept and are counted by the first call that reaches the
    # store: u1's five are past its limit of two, u2 has one left.
    with pytest.raises(BudgetExceeded):
        call("u1")
    assert call("u2") == expected
    with pytest.raises(BudgetExceeded):
        call("u2")
    assert store_errors() == 6
    redis_client = redis.Redis.from_url(throwaway_redis.url)
    requests = {
        key.decode().rsplit("|", 2)[1]: int(redis_client.hget(key, "requests") or 0)
        for key in redis_client.keys("*:c:*")
    }
    assert requests == {"u1": 5, "u2": 2}


# --- pricing file deleted or corrupted while running ---------------------------------------------

OVERRIDES = """\
version: 1
models:
  acme-model:
    provider: openai
    input: 0.5
    output: 1.5
"""
ACME_COST = 1000 * 0.5e-6 + 500 * 1.5e-6


def _costs(telemetry: Telemetry) -> list[Any]:
    return [(s.attributes or {}).get(names.COST_USD) for s in telemetry.spans()]


def test_pricing_file_deleted_or_corrupted_while_running(
    telemetry: Telemetry, fake_provider: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text(OVERRIDES)
    configure(**fake_provider_settings(fake_provider, pricing_file=str(prices)))
    sdk = client(fake_provider)
    headers = usage_headers(USAGE)
    expected = bare_view(sdk, headers, "acme-model")

    def acme() -> None:
        assert (
            view(sdk.chat.completions.create(model="acme-model", messages=MESSAGES, extra_headers=headers)) == expected
        )

    acme()
    prices.unlink()
    acme()
    prices.write_text("models: [unclosed\n  - {")
    acme()
    assert _costs(telemetry) == [pytest.approx(ACME_COST, abs=1e-12)] * 3  # prices as loaded
    assert fault_counts() == {}

    with pytest.raises(ConfigError, match=str(prices)):
        configure(**fake_provider_settings(fake_provider, pricing_file=str(prices)))
    acme()  # the failed reconfiguration left the working runtime in place
    assert _costs(telemetry)[-1] == pytest.approx(ACME_COST, abs=1e-12)

    # Under the launcher (no configure() call): the corrupt file is logged and counted, and the
    # bundled prices are used.
    telemetry.spans_exporter.clear()
    reset_runtime()
    monkeypatch.setenv("GENAI_METER_PRICING_FILE", str(prices))
    mini = sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=headers)
    assert view(mini) == bare_view(sdk, headers)
    acme()
    assert fault_counts() == {"config": 1}
    mini_attrs, acme_attrs = [s.attributes or {} for s in telemetry.spans()]
    assert mini_attrs[names.COST_USD] == pytest.approx(COST, abs=1e-12)
    assert acme_attrs[names.UNPRICED] is True  # the override is gone: unpriced, never $0
    assert names.COST_USD not in acme_attrs
    assert telemetry.total(names.FAULTS.otel_name, where="config") == 1


# --- provider faults: broken streams, malformed SSE and JSON -------------------------------------


def _outcome(sdk: openai.OpenAI, stream: bool, headers: dict[str, str]) -> tuple[type | None, list[Any]]:
    """(exception type or None, chunks or completion views seen before it)."""
    seen: list[Any] = []
    try:
        result = sdk.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=stream, extra_headers=headers
        )
        if stream:
            for chunk in result:
                seen.append(([c.model_dump() for c in chunk.choices], chunk.model))
        else:
            seen.append(view(result))
    except Exception as error:
        return type(error), seen
    return None, seen


@pytest.mark.parametrize(
    ("stream", "headers"),
    [
        (True, {"x-fake-drop-after": "1", "x-fake-chunks": "4"}),
        (True, {"x-fake-drop-after": "3", "x-fake-chunks": "4"}),
        (True, {"x-fake-malformed": "sse"}),
        (False, {"x-fake-malformed": "json"}),
        (False, {"x-fake-error": "500"}),
    ],
    ids=["drop-after-1", "drop-after-3", "malformed-sse", "malformed-json", "error-500"],
)
def test_provider_fault_reaches_the_app_as_uninstrumented(
    telemetry: Telemetry, fake_provider: Any, stream: bool, headers: dict[str, str]
) -> None:
    sdk = client(fake_provider)
    with suppress_instrumentation():
        bare_error, bare_seen = _outcome(sdk, stream, headers)
    assert bare_error is not None
    error, seen = _outcome(sdk, stream, headers)
    assert (error, seen) == (bare_error, bare_seen)

    span = telemetry.only_span()
    attrs = span.attributes or {}
    assert attrs[names.OUTCOME] == names.OUTCOME_ERROR
    assert attrs[names.ERROR_TYPE] == bare_error.__qualname__
    assert telemetry.total(names.REQUESTS.otel_name, outcome=names.OUTCOME_ERROR) == 1
    assert telemetry.total(names.REQUESTS.otel_name) == 1
    if stream:
        # What was streamed before the break is kept: output estimated at one token per piece of
        # text received (the content chunks the app saw; the role chunk and a malformed event the
        # SDK could not parse carry none).
        assert attrs[names.USAGE_ESTIMATED] is True
        received = sum(1 for choices, _model in seen if choices and choices[0]["delta"]["content"])
        assert attrs[names.USAGE_OUTPUT_TOKENS] == received
    assert fault_counts() == {}


def test_malformed_json_on_a_stream_request(telemetry: Telemetry, fake_provider: Any) -> None:
    """A 200 with a non-JSON body to a stream request: the SDK yields nothing and raises nothing."""
    sdk = client(fake_provider)
    headers = {"x-fake-malformed": "json"}
    with suppress_instrumentation():
        bare = _outcome(sdk, True, headers)
    assert bare == (None, [])
    assert _outcome(sdk, True, headers) == bare
    span = telemetry.only_span()
    attrs = span.attributes or {}
    assert attrs[names.USAGE_ESTIMATED] is True  # nothing reported: the prompt is estimated
    assert attrs[names.USAGE_OUTPUT_TOKENS] == 0
    assert telemetry.total(names.REQUESTS.otel_name) == 1
    assert telemetry.total(names.ESTIMATED_CALLS.otel_name) == 1
    assert fault_counts() == {}


# --- usage fields missing, null, negative or not numbers -----------------------------------------

BAD_USAGE = [
    ({"prompt_tokens": None, "completion_tokens": -5}, 0, 0),
    ({}, 0, 0),
    ({"prompt_tokens": -1, "completion_tokens": 7}, 0, 7),
    ({"prompt_tokens": "abc", "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": -3}}, 0, 7),
    ({"prompt_tokens": 1000, "completion_tokens": None}, 1000, 0),
    ({"prompt_tokens": 1000}, 1000, 0),
]


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")  # the app's model_dump of "abc"
@pytest.mark.parametrize(("usage", "input_tokens", "output_tokens"), BAD_USAGE)
def test_invalid_usage_counts_as_zero(
    telemetry: Telemetry, fake_provider: Any, usage: dict[str, Any], input_tokens: int, output_tokens: int
) -> None:
    sdk = client(fake_provider)
    headers = usage_headers(usage)
    expected = bare_view(sdk, headers)
    completion = sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=headers)
    assert view(completion) == expected  # the app gets the provider's object untouched

    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.OUTCOME] == names.OUTCOME_OK
    assert attrs[names.USAGE_INPUT_TOKENS] == input_tokens  # valid fields are kept, bad ones count 0
    assert attrs[names.USAGE_OUTPUT_TOKENS] == output_tokens
    assert attrs.get(names.USAGE_CACHE_READ_INPUT_TOKENS, 0) == 0
    cost = input_tokens * MINI_IN + output_tokens * MINI_OUT
    assert attrs[names.COST_USD] == pytest.approx(cost, abs=1e-12)
    assert telemetry.total(names.TOKENS.otel_name, type="input") == input_tokens
    assert telemetry.total(names.TOKENS.otel_name, type="output") == output_tokens
    assert telemetry.total(names.COST.otel_name) == pytest.approx(cost, abs=1e-12)


@pytest.mark.parametrize(("usage", "input_tokens", "output_tokens"), BAD_USAGE[:2])
def test_invalid_usage_is_visible(
    telemetry: Telemetry, fake_provider: Any, usage: dict[str, Any], input_tokens: int, output_tokens: int
) -> None:
    sdk = client(fake_provider)
    sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers(usage))
    assert telemetry.total(names.FAULTS.otel_name, where="usage.suspect") == 1  # (a collection records first)
    assert fault_counts().get("usage.suspect") == 1
    assert (telemetry.only_span().attributes or {})[names.USAGE_SUSPECT] is True


def test_invalid_usage_in_a_stream(telemetry: Telemetry, fake_provider: Any) -> None:
    sdk = client(fake_provider)
    headers = usage_headers({"prompt_tokens": None, "completion_tokens": -5})
    with suppress_instrumentation():
        bare = _outcome(sdk, True, headers)
    assert _outcome(sdk, True, headers) == bare
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.OUTCOME] == names.OUTCOME_OK
    assert attrs[names.USAGE_INPUT_TOKENS] == 0
    assert attrs[names.USAGE_OUTPUT_TOKENS] == 0
    assert fault_counts() == {"usage.suspect": 1}  # counted, and the span says so


@pytest.fixture(autouse=True)
def _no_stray_faults() -> Iterator[None]:
    reset_faults()
    yield
    reset_faults()
