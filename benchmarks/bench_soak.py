"""Soak: many calls from many distinct users through the real `openai` SDK, instrumented.

What a long-running service would show after a day: memory that stops growing once the parts with a
bound (label values, caches) are full, no span left open (every call ends exactly once, including
streams the app broke off and dropped), and metric series bounded by `label_cap`, however many users
there are. The transport is an in-process `httpx2.MockTransport` (no sockets), so the figures are
genai-meter's, the SDK's and the OTel SDK's alone.

Mix per 20 calls: 16 non-streaming chat calls, 2 streams read to the end, 1 stream broken off with
`break` after two chunks and dropped (ended by garbage collection), 1 stream broken off and closed.
Each call is attributed to one of `users` users (round robin, so every user recurs), in one of 20
tenants and 4 features. Spans go through a `BatchSpanProcessor` into a counting exporter; metrics
are collected by an `InMemoryMetricReader` every 100,000 calls (and at the end).

    python benchmarks/bench_soak.py [--calls 1000000] [--users 100000] [--label-cap 1000] [--json]

Importable: `run_soak(calls, users, label_cap) -> dict` (the test suite runs it small).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import threading
import time
from collections.abc import Sequence
from typing import Any

import httpx2
import openai
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import genai_meter
from genai_meter import names
from genai_meter._runtime import configure, get_runtime, reset_runtime
from genai_meter.instrumentation.openai import OpenAIInstrumentor

USAGE = {
    "prompt_tokens": 1200,
    "completion_tokens": 300,
    "total_tokens": 1500,
    "prompt_tokens_details": {"cached_tokens": 256},
    "completion_tokens_details": {"reasoning_tokens": 0},
}
_COMPLETION = json.dumps(
    {
        "id": "chatcmpl-soak",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hello"}}],
        "usage": USAGE,
    }
).encode()
STREAM_CHUNKS = 8


def _chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-soak",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _stream_body(include_usage: bool) -> bytes:
    lines = [
        _chunk({"content": f"tok{i} ", **({"role": "assistant"} if i == 0 else {})}, None) for i in range(STREAM_CHUNKS)
    ]
    lines.append(_chunk({}, "stop"))
    if include_usage:
        lines.append({**_chunk({}, None), "choices": [], "usage": USAGE})
    return b"".join(b"data: " + json.dumps(line).encode() + b"\n\n" for line in lines) + b"data: [DONE]\n\n"


_STREAM_WITH_USAGE = _stream_body(True)
_STREAM_BARE = _stream_body(False)


def _handler(request: httpx2.Request) -> httpx2.Response:
    body = json.loads(request.content)
    if body.get("stream"):
        include = bool((body.get("stream_options") or {}).get("include_usage"))
        return httpx2.Response(
            200,
            content=_STREAM_WITH_USAGE if include else _STREAM_BARE,
            headers={"content-type": "text/event-stream"},
        )
    return httpx2.Response(200, content=_COMPLETION, headers={"content-type": "application/json"})


class CountingExporter(SpanExporter):
    """Counts exported spans (the export itself does nothing)."""

    def __init__(self) -> None:
        self.exported = 0
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock:
            self.exported += len(spans)
        return SpanExportResult.SUCCESS


class SpanCounter(SpanProcessor):
    """Counts spans started and ended: the difference is the number still open."""

    def __init__(self) -> None:
        self.started = 0
        self.ended = 0
        self._lock = threading.Lock()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        with self._lock:
            self.started += 1

    def on_end(self, span: ReadableSpan) -> None:
        with self._lock:
            self.ended += 1


def rss_kib() -> int:
    """Resident set size of this process (VmRSS), in KiB; 0 where /proc is missing."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


_USER_METRICS = (names.COST, names.TOKENS, names.REQUESTS)


def _series(reader: InMemoryMetricReader) -> dict[str, dict[str, int]]:
    """Per exported metric: data points, distinct user label values, points in the SDK's overflow."""
    found: dict[str, dict[str, int]] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points: list[Any] = list(metric.data.data_points)
                users = {p.attributes.get(names.LABEL_USER) for p in points if p.attributes}
                users.discard(None)
                found[metric.name] = {
                    "series": len(points),
                    "user_values": len(users),
                    "sdk_overflow_points": sum(
                        1 for p in points if p.attributes and p.attributes.get("otel.metric.overflow")
                    ),
                }
    return found


MESSAGES: Any = [{"role": "user", "content": "hello"}]


def run_soak(
    calls: int = 1_000_000,
    users: int = 100_000,
    label_cap: int = 1000,
    *,
    collect_every: int = 100_000,
    progress: bool = False,
) -> dict[str, Any]:
    """Run the soak in this process and return its figures (see the module docstring)."""
    sample_every = max(1, calls // 20)
    warmup = max(sample_every, calls // 10)
    counter = SpanCounter()
    exporter = CountingExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(counter)
    tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    client = openai.OpenAI(
        api_key="sk-soak",
        base_url="https://api.openai.com/v1",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(_handler)),
    )
    samples: list[tuple[int, int]] = [(0, rss_kib())]
    collections: list[dict[str, dict[str, int]]] = []
    kinds = {"call": 0, "stream": 0, "stream_break_dropped": 0, "stream_break_closed": 0}
    try:
        configure(ledger_url="off", label_cap=label_cap)
        runtime = get_runtime()
        completions = client.chat.completions
        started = time.perf_counter()
        for i in range(calls):
            slot = i % 20
            with genai_meter.attribute(user=f"user-{i % users}", tenant=f"tenant-{i % 20}", feature=f"f{i % 4}"):
                if slot < 16:
                    completions.create(model="gpt-4o-mini", messages=MESSAGES)
                    kinds["call"] += 1
                elif slot < 18:
                    for _ in completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
                        pass
                    kinds["stream"] += 1
                else:
                    stream = completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
                    for seen, _ in enumerate(stream):
                        if seen == 1:
                            break
                    if slot == 19:
                        stream.close()
                        kinds["stream_break_closed"] += 1
                    else:
                        kinds["stream_break_dropped"] += 1
                    del stream
            done = i + 1
            if done % collect_every == 0:
                collections.append(_series(reader))
            if done % sample_every == 0:
                samples.append((done, rss_kib()))
                if progress:
                    rate = done / (time.perf_counter() - started)
                    print(f"  {done:>9,} calls  rss {samples[-1][1] / 1024:7.1f} MiB  {rate:7.0f} calls/s", flush=True)
        elapsed = time.perf_counter() - started
        gc.collect()
        final_series = _series(reader)
        in_process = runtime.metrics.series_counts()
        distinct_users = runtime.metrics.distinct_users()
    finally:
        instrumentor.uninstrument()
        reset_runtime()
        client.close()
    open_before_shutdown = counter.started - counter.ended
    tracer_provider.shutdown()
    meter_provider.shutdown()
    after_warmup = [rss for done, rss in samples if done >= warmup] or [samples[-1][1]]
    return {
        "calls": calls,
        "users": users,
        "label_cap": label_cap,
        "mix": kinds,
        "elapsed_s": elapsed,
        "calls_per_s": calls / elapsed if elapsed else 0.0,
        "rss_samples_kib": samples,
        "rss_start_kib": samples[0][1],
        "rss_after_warmup_kib": after_warmup[0],
        "rss_last_kib": samples[-1][1],
        "rss_max_kib": max(rss for _done, rss in samples),
        "rss_growth_after_warmup_kib": samples[-1][1] - after_warmup[0],
        "spans_started": counter.started,
        "spans_ended": counter.ended,
        "spans_open_before_shutdown": open_before_shutdown,
        "spans_open": counter.started - counter.ended,
        "spans_exported": exporter.exported,
        # Ended but not exported: dropped by the BatchSpanProcessor when its queue (2,048) was full.
        "spans_dropped_by_processor": counter.ended - exporter.exported,
        "series": final_series,
        "series_per_collection": collections,
        "in_process_series": in_process,
        "distinct_user_labels": distinct_users,
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--label-cap", type=int, default=1000)
    parser.add_argument("--json", action="store_true", help="print the full result as JSON at the end")
    args = parser.parse_args()
    print(f"machine: {_cpu_model()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"soak: {args.calls:,} calls, {args.users:,} users, label_cap {args.label_cap}", flush=True)
    result = run_soak(args.calls, args.users, args.label_cap, progress=True)
    mib = 1024.0
    print(f"mix: {result['mix']}")
    print(f"throughput: {result['calls_per_s']:.0f} calls/s ({result['elapsed_s']:.0f} s)")
    print(
        f"rss: start {result['rss_start_kib'] / mib:.1f} MiB, after warm-up {result['rss_after_warmup_kib'] / mib:.1f}"
        f" MiB, last {result['rss_last_kib'] / mib:.1f} MiB, max {result['rss_max_kib'] / mib:.1f} MiB,"
        f" growth after warm-up {result['rss_growth_after_warmup_kib'] / mib:+.1f} MiB"
    )
    print(
        f"spans: started {result['spans_started']:,}, ended {result['spans_ended']:,}, open "
        f"{result['spans_open']}, exported {result['spans_exported']:,}, dropped by the span processor's full "
        f"queue {result['spans_dropped_by_processor']:,}"
    )
    print(f"distinct user label values: {result['distinct_user_labels']} (cap {args.label_cap})")
    for metric, row in sorted(result["series"].items()):
        print(
            f"  {metric:45s} series {row['series']:6d}  user values {row['user_values']:5d}"
            f"  sdk overflow points {row['sdk_overflow_points']}"
        )
    print(f"in-process series: {result['in_process_series']}")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
