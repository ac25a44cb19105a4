"""The deferred semconv histograms: recorded at collection, and in a forked worker too."""

from __future__ import annotations

import gc
import os
import threading
import time
import weakref
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from genai_meter import _metrics as metrics_module
from genai_meter import names
from genai_meter._histogram_records import HistogramRecorder
from genai_meter._metrics import CallMetrics, _DeferredRecords, call_metrics_for
from genai_meter._usage import Usage


def _metrics() -> tuple[CallMetrics, InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    return CallMetrics(meter, label_cap=10, user_labels=True, tenant_labels=True), reader


def _token_sums(reader: InMemoryMetricReader) -> dict[str, float]:
    sums: dict[str, float] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == names.TOKEN_USAGE.otel_name:
                    for point in metric.data.data_points:
                        sums[str(point.attributes[names.TOKEN_TYPE])] = point.sum  # type: ignore[index]
    return sums


def test_queued_records_reach_the_histograms_at_collection() -> None:
    metrics, reader = _metrics()
    attrs = metrics.histogram_attributes("chat", "openai", "gpt-4o-mini", "gpt-4o-mini", "api.openai.com")
    for _ in range(3):
        metrics.deferred.add(Usage(input_tokens=100, output_tokens=7), attrs, 0.25, None)
    assert _token_sums(reader) == {"input": 300, "output": 21}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_worker_drains_its_own_queue() -> None:
    metrics, _reader = _metrics()
    attrs = metrics.histogram_attributes("chat", "openai", "m", "m", "h")
    metrics.deferred.add(Usage(input_tokens=1, output_tokens=1), attrs, 0.1, None)  # starts the thread
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the parent's drain thread does not exist here
        metrics.deferred.add(Usage(input_tokens=5, output_tokens=6), attrs, 0.1, None)
        deadline = time.monotonic() + 5
        while metrics.deferred._pending and time.monotonic() < deadline:
            time.sleep(0.05)
        os.write(write_end, str(len(metrics.deferred._pending)).encode())
        os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    assert os.read(read_end, 16) == b"0", "the child's queue was drained by its own thread"


def test_a_collection_waits_for_the_values_a_drain_in_progress_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    """A drain takes the whole queue, then records it: a collection that starts meanwhile must not
    find the queue empty and export without those values (nor the exit's last collection lose
    them with the daemon thread)."""
    # No background drain in this test: the shared drain thread (started by an earlier test) would
    # take the queue before the worker does.
    monkeypatch.setattr(_DeferredRecords, "_start", lambda self: None)
    metrics, reader = _metrics()
    attrs = metrics.histogram_attributes("chat", "openai", "gpt-4o-mini", "gpt-4o-mini", "api.openai.com")
    inside, release = threading.Event(), threading.Event()
    record_groups = HistogramRecorder.record_groups

    def slow_record(self: HistogramRecorder, groups: Any) -> None:
        if threading.current_thread() is worker:
            inside.set()
            release.wait(5)
        record_groups(self, groups)

    monkeypatch.setattr(HistogramRecorder, "record_groups", slow_record)
    worker = threading.Thread(target=metrics.deferred.drain)
    for _ in range(3):
        metrics.deferred.add(Usage(input_tokens=100, output_tokens=7), attrs, 0.25, None)
    worker.start()
    assert inside.wait(5)  # the worker holds all three calls' values
    threading.Timer(0.3, release.set).start()
    assert _token_sums(reader) == {"input": 300, "output": 21}
    worker.join(5)


def test_the_drain_thread_outlives_a_fault(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fault in one timed drain is counted; the thread goes on and drains what comes later."""
    from genai_meter._faults import fault_counts, reset_faults

    reset_faults()
    monkeypatch.setattr(_DeferredRecords, "_INTERVAL_S", 0.02)
    metrics, reader = _metrics()
    attrs = metrics.histogram_attributes("chat", "openai", "gpt-4o-mini", "gpt-4o-mini", "api.openai.com")
    drain = _DeferredRecords._drain
    failed = threading.Event()

    def failing_once(self: _DeferredRecords) -> None:
        if not failed.is_set():
            failed.set()
            raise RuntimeError("surprise")
        drain(self)

    monkeypatch.setattr(_DeferredRecords, "_drain", failing_once)
    metrics.deferred.add(Usage(input_tokens=100, output_tokens=7), attrs, 0.25, None)  # starts the thread
    assert failed.wait(5)
    thread = metrics.deferred._thread
    metrics.deferred.add(Usage(input_tokens=1, output_tokens=2), attrs, 0.25, None)
    deadline = time.monotonic() + 5
    while metrics.deferred._pending and time.monotonic() < deadline:
        time.sleep(0.02)
    assert thread is not None and thread.is_alive()
    assert not metrics.deferred._pending, "a later timed drain took the queue"
    assert fault_counts() == {"metrics.histogram": 1}
    assert _token_sums(reader) == {"input": 101, "output": 9}
    reset_faults()


def _drain_threads() -> set[threading.Thread]:
    return {thread for thread in threading.enumerate() if thread.name == "genai-meter-deferred"}


def test_one_drain_thread_for_every_meter_and_none_kept_for_a_meter_gone() -> None:
    """Each meter provider given to `instrument()` used to start a drain thread that never ended,
    and its meter's metrics stayed registered for ever (a test suite instruments per test)."""
    kept, _reader = _metrics()  # registered throughout: the shared thread cannot end meanwhile
    attrs = kept.histogram_attributes("chat", "openai", "m", "m", "h")
    kept.deferred.add(Usage(input_tokens=1, output_tokens=1), attrs, 0.1, None)
    before = _drain_threads()
    assert kept.deferred._thread in before
    gone = []
    for _ in range(20):
        provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
        meter = provider.get_meter("genai_meter")
        metrics = call_metrics_for(meter, label_cap=10, user_labels=True, tenant_labels=True)
        assert call_metrics_for(meter, label_cap=10, user_labels=True, tenant_labels=True) is metrics
        metrics.deferred.add(Usage(input_tokens=1, output_tokens=1), attrs, 0.1, None)
        provider.shutdown()
        gone.append((id(meter), weakref.ref(meter), weakref.ref(metrics)))
        del provider, meter, metrics
    gc.collect()
    assert _drain_threads() - before == set()
    assert [(meter(), metrics()) for _key, meter, metrics in gone] == [(None, None)] * 20
    assert not {key for key, _meter, _metrics in gone} & set(metrics_module._by_meter)


def test_the_shared_thread_drains_every_meter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_DeferredRecords, "_INTERVAL_S", 0.02)
    (first, first_reader), (second, second_reader) = _metrics(), _metrics()
    for metrics in (first, second):
        attrs = metrics.histogram_attributes("chat", "openai", "gpt-4o-mini", "gpt-4o-mini", "api.openai.com")
        metrics.deferred.add(Usage(input_tokens=100, output_tokens=7), attrs, 0.25, None)
    deadline = time.monotonic() + 5
    while (first.deferred._pending or second.deferred._pending) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not first.deferred._pending and not second.deferred._pending
    assert _token_sums(first_reader) == _token_sums(second_reader) == {"input": 100, "output": 7}


def _histogram_points(reader: InMemoryMetricReader) -> list[tuple[Any, ...]]:
    data = reader.get_metrics_data()
    assert data is not None
    found = []
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name in (names.TOKEN_USAGE.otel_name, names.OPERATION_DURATION.otel_name):
                    for point in metric.data.data_points:
                        found.append(
                            (
                                metric.name,
                                sorted((point.attributes or {}).items()),
                                point.count,  # type: ignore[union-attr]
                                point.sum,  # type: ignore[union-attr]
                                point.min,  # type: ignore[union-attr]
                                point.max,  # type: ignore[union-attr]
                                tuple(point.bucket_counts),  # type: ignore[union-attr]
                            )
                        )
    return sorted(found, key=repr)


def test_a_drain_records_what_the_public_record_of_each_call_would(monkeypatch: pytest.MonkeyPatch) -> None:
    """The drain groups the calls' values by attribute tuple (and error type), in runs or not; the
    points are those of recording each call's values publicly, in the calls' order (float sums
    included, which depend on it)."""
    monkeypatch.setattr(_DeferredRecords, "_start", lambda self: None)  # (one drain, at collection)
    metrics, reader = _metrics()
    public_reader = InMemoryMetricReader()
    public = CallMetrics(
        MeterProvider(metric_readers=[public_reader]).get_meter("public"),
        label_cap=10,
        user_labels=True,
        tenant_labels=True,
    )
    chat = ("chat", "openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "api.openai.com")
    messages = ("chat", "anthropic", "claude-sonnet-4-5", "", "")
    calls: list[tuple[tuple[str, ...], Usage | None, float, str | None]] = [
        (chat, Usage(input_tokens=1200, output_tokens=300), 0.1, None),
        (chat, Usage(input_tokens=0, output_tokens=16384), 0.2, None),
        (messages, Usage(input_tokens=5, output_tokens=4), 1e16, None),
        (chat, None, 0.3, "RateLimitError"),
        (chat, Usage(input_tokens=64, output_tokens=1), 1.0, None),
        (messages, None, 0.7, None),
        (chat, None, 2.5, "RateLimitError"),
        (chat, Usage(input_tokens=7, output_tokens=9), 0.30000000000000004, "APITimeoutError"),
        (messages, Usage(input_tokens=20000, output_tokens=256), 1e-9, None),
        (chat, Usage(input_tokens=3, output_tokens=3), 3.0, None),
    ]
    for model, usage, duration_s, error_type in calls:
        metrics.deferred.add(usage, metrics.histogram_attributes(*model), duration_s, error_type)
        attrs = public.histogram_attributes(*model)
        if usage is not None:
            public.token_usage.record(usage.input_tokens, attrs[0])
            public.token_usage.record(usage.output_tokens, attrs[1])
        failed = {} if error_type is None else {names.ERROR_TYPE: error_type}
        public.duration.record(duration_s, {**attrs[2], **failed})
    points = _histogram_points(public_reader)
    assert len(points) == 8  # 4 token series, 2 durations and 2 with an error type
    assert _histogram_points(reader) == points
    assert metrics.deferred.token_usage.fast_records == 14
    assert metrics.deferred.duration.fast_records == 10
