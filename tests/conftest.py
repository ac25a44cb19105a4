"""Shared fixtures: the project's fake provider on 127.0.0.1 and in-memory OTel pipelines.

Nothing here is mocked: the real `openai` SDK talks real HTTP to the fake provider, and spans and
metrics go through the real OTel SDK into its in-memory exporter and reader.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

# No test may write a ledger into the developer's home folder unless it asks for one.
os.environ.setdefault("GENAI_METER_LEDGER_URL", "off")
for _name in [
    name for name in os.environ if name.startswith("GENAI_METER_") and name != "GENAI_METER_LEDGER_URL"
]:
    del os.environ[_name]

from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

from genai_meter._faults import reset_faults  # noqa: E402
from genai_meter._runtime import configure, reset_runtime  # noqa: E402
from genai_meter.fake_provider import FakeProvider  # noqa: E402


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, reason: str) -> None:
    """Skip outside CI; in CI a missing service or tool is a failure."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def fake_provider() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        yield provider


@dataclass
class Telemetry:
    spans_exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracer_provider: TracerProvider
    meter_provider: MeterProvider

    def spans(self) -> list[ReadableSpan]:
        # Behind a batch processor, spans are exported (and calls' endings recorded) at a flush.
        self.tracer_provider.force_flush()
        return list(self.spans_exporter.get_finished_spans())

    def only_span(self) -> ReadableSpan:
        spans = self.spans()
        assert len(spans) == 1, [span.name for span in spans]
        return spans[0]

    def points(self, metric_name: str) -> list[tuple[dict[str, Any], Any]]:
        """(attributes, value) of every data point of a metric; histograms give the point itself."""
        data = self.reader.get_metrics_data()
        found: list[tuple[dict[str, Any], Any]] = []
        if data is None:
            return found
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name != metric_name:
                        continue
                    for point in metric.data.data_points:
                        value = getattr(point, "value", point)
                        found.append((dict(point.attributes or {}), value))
        return found

    def total(self, metric_name: str, **labels: Any) -> float:
        return sum(
            value
            for attrs, value in self.points(metric_name)
            if all(attrs.get(key) == wanted for key, wanted in labels.items())
        )


@contextmanager
def instrumented(instrumentor: Any, span_processor: str = "simple", **settings: Any) -> Iterator[Telemetry]:
    """`instrumentor` on in-memory span and metric pipelines, configured with `settings`.

    `span_processor` "batch" is the OTel SDK's batch processor, as `opentelemetry-instrument` sets
    it up: calls end off the app's thread there (`_span_export`), and spans are read after a flush."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    if span_processor == "batch":
        tracer_provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=3_600_000))
    else:
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    reset_faults()
    instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    configure(**settings)
    try:
        yield Telemetry(exporter, reader, tracer_provider, meter_provider)
    finally:
        instrumentor.uninstrument()
        reset_runtime()
        reset_faults()
        if span_processor == "batch":
            tracer_provider.shutdown()  # (its export thread)


@pytest.fixture(params=["simple", "batch"])
def telemetry(fake_provider: FakeProvider, request: pytest.FixtureRequest) -> Iterator[Telemetry]:
    """OpenAI instrumented into in-memory span and metric pipelines, pointed at the fake provider;
    each test runs behind the SDK's simple span processor (calls end on the app's thread) and its
    batch one (calls end at a later drain)."""
    from genai_meter.instrumentation.openai import OpenAIInstrumentor

    with instrumented(OpenAIInstrumentor(), request.param, **fake_provider_settings(fake_provider)) as telemetry:
        yield telemetry


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThrowawayRedis:
    """A redis-server of our own on a free 127.0.0.1 port, to stop and restart mid-test (never the
    machine's shared one)."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import redis

        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.2).ping()
                return
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None


@pytest.fixture
def throwaway_redis() -> Iterator[ThrowawayRedis]:
    binary = shutil.which("redis-server")
    require(binary is not None, "redis-server is not installed")
    assert binary is not None
    server = ThrowawayRedis(binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def fake_provider_settings(provider: FakeProvider, **extra: Any) -> dict[str, Any]:
    """Settings that make the fake provider's host count as OpenAI's own endpoint."""
    host = "127.0.0.1"
    settings: dict[str, Any] = {
        "ledger_url": "off",
        "provider_hosts": {host: "openai"},
        "inject_stream_usage": {host: True},
    }
    settings.update(extra)
    return settings
