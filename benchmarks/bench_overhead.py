"""Overhead per OpenAI call: instrumented minus bare, on the same in-process transport.

Both sides use the real `openai` SDK with an `httpx2.MockTransport` (no sockets), so what differs
is genai-meter alone: span (BatchSpanProcessor into a no-op exporter), metrics (semconv histograms
plus the in-process sums, collected by a reader), cost and attribution. Rounds alternate bare and
instrumented so drift on a shared machine hits both; the overhead is the best instrumented block
minus the best bare block (the least disturbed measurement of each, as `timeit` advises), and the
median and range of the per-round differences are printed beside it. The cyclic garbage collector is paused inside each timed block (and run
between blocks) for both sides alike: its pauses land at random in one side or the other and
otherwise swamp a ~100 µs difference on a ~600 µs call.

    python benchmarks/bench_overhead.py [--calls 2000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx2
import openai
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import genai_meter
from genai_meter._runtime import configure
from genai_meter.instrumentation.openai import OpenAIInstrumentor

USAGE = {
    "prompt_tokens": 1200,
    "completion_tokens": 300,
    "total_tokens": 1500,
    "prompt_tokens_details": {"cached_tokens": 256},
    "completion_tokens_details": {"reasoning_tokens": 0},
}
COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hello"}}
        ],
        "usage": USAGE,
    }
).encode()


def _stream_body(chunks: int, include_usage: bool) -> bytes:
    lines = []
    for i in range(chunks):
        delta: dict[str, Any] = {"content": f"tok{i} "}
        if i == 0:
            delta["role"] = "assistant"
        lines.append(
            {
                "id": "chatcmpl-bench",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "gpt-4o-mini",
                "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
            }
        )
    lines.append(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        }
    )
    if include_usage:
        lines.append(
            {
                "id": "chatcmpl-bench",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "gpt-4o-mini",
                "choices": [],
                "usage": USAGE,
            }
        )
    return b"".join(b"data: " + json.dumps(line).encode() + b"\n\n" for line in lines) + b"data: [DONE]\n\n"


STREAM_WITH_USAGE = _stream_body(20, True)
STREAM_BARE = _stream_body(20, False)


def _handler(request: httpx2.Request) -> httpx2.Response:
    body = json.loads(request.content)
    if body.get("stream"):
        include = bool((body.get("stream_options") or {}).get("include_usage"))
        return httpx2.Response(
            200,
            content=STREAM_WITH_USAGE if include else STREAM_BARE,
            headers={"content-type": "text/event-stream"},
        )
    return httpx2.Response(200, content=COMPLETION, headers={"content-type": "application/json"})


class _NullExporter(SpanExporter):
    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _client() -> openai.OpenAI:
    return openai.OpenAI(
        api_key="sk-bench",
        base_url="https://api.openai.com/v1",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(_handler)),
    )


MESSAGES: Any = [{"role": "user", "content": "hello"}]


def _call(client: openai.OpenAI) -> None:
    with genai_meter.attribute(user="user-1", tenant="acme", feature="chat"):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


def _stream(client: openai.OpenAI) -> None:
    with genai_meter.attribute(user="user-1", tenant="acme", feature="chat"):
        for _chunk in client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
            pass


def _time_per_call(func: Callable[[openai.OpenAI], None], client: openai.OpenAI, calls: int) -> float:
    """CPU time of this process per call (all threads: the span processor's work counts too)."""
    gc.collect()
    gc.disable()
    try:
        start = time.process_time_ns()
        for _ in range(calls):
            func(client)
        return (time.process_time_ns() - start) / calls / 1000.0
    finally:
        gc.enable()


def measure(calls: int, rounds: int) -> dict[str, Any]:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(_NullExporter(), max_queue_size=100_000))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    instrumentor = OpenAIInstrumentor()
    client = _client()
    results: dict[str, Any] = {}
    for label, func in (("non-streaming call", _call), ("20-chunk stream", _stream)):
        diffs, bare_times, inst_times = [], [], []
        for _ in range(rounds):
            func(client)  # warm
            bare = _time_per_call(func, client, calls)
            instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
            configure(ledger_url="off")
            func(client)
            inst = _time_per_call(func, client, calls)
            instrumentor.uninstrument()
            reader.get_metrics_data()
            diffs.append(inst - bare)
            bare_times.append(bare)
            inst_times.append(inst)
        results[label] = {
            "bare_us": min(bare_times),
            "instrumented_us": min(inst_times),
            # Best block of each side: the least disturbed measurement of each (as timeit advises).
            "overhead_us": min(inst_times) - min(bare_times),
            "median_diff_us": statistics.median(diffs),
            "diff_range_us": (min(diffs), max(diffs)),
        }
    tracer_provider.shutdown()
    return results


def measure_pricing(iterations: int = 200_000) -> float:
    from genai_meter import Usage
    from genai_meter.pricing import PriceBook

    book = PriceBook.load(None)
    usage = Usage(input_tokens=1200, output_tokens=300, cache_read_tokens=256)
    now = time.time()
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter_ns()
        for _ in range(iterations):
            pricing = book.resolve("openai", "gpt-4o-mini-2024-07-18")
            assert pricing is not None
            pricing.cost(usage, now)
        best = min(best, (time.perf_counter_ns() - start) / iterations / 1000.0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}")
    for label, row in measure(args.calls, args.rounds).items():
        low, high = row["overhead_range_us"]
        print(
            f"{label:20s} bare {row['bare_us']:8.1f} µs  instrumented {row['instrumented_us']:8.1f} µs  "
            f"overhead {row['overhead_us']:6.1f} µs (range {low:.1f}..{high:.1f})"
        )
    print(f"{'price a call':20s} {measure_pricing():.2f} µs (resolve cached model + cost, best of 5)")


if __name__ == "__main__":
    main()
