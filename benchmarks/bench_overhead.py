"""Overhead per call of genai-meter: instrumented minus bare, on the same in-process transport.

Each SDK (openai, anthropic, google-genai) talks to an `httpx2.MockTransport` that replays bodies
recorded once from the project's fake provider (so the wire format is the real one), with no
sockets. What differs between the two sides is genai-meter alone: a span (BatchSpanProcessor into a
no-op exporter), metrics (semconv histograms and the in-process sums, collected by a reader), cost,
and attribution (`genai_meter.attribute` around every call, on both sides).

The OTel set-up is the one `opentelemetry-instrument` makes: the tracer and meter providers are the
global ones. That matters for the anthropic SDK (2.x), which traces its own calls with the global
tracer provider: under the launcher the bare SDK makes its own span too, so both sides pay for it.
(Without a global provider the bare SDK skips that work, and genai-meter's current span would
switch half of it back on: ~170,000 instructions per call that are the SDK's, not genai-meter's.)

Rounds alternate bare and instrumented blocks, so drift on a shared machine hits both; each figure
is the best instrumented block minus the best bare block (the least disturbed measurement of each,
as `timeit` advises). Two figures per scenario:
- call path: CPU time of the calling thread, i.e. what the app's thread pays per call;
- total CPU: CPU time of the whole process, including the span processor's thread and a metric
  collection at the end of each block (which records the histogram values queued by the calls),
  so work moved off the call path is still counted.
The cyclic garbage collector is paused inside each timed block for both sides alike.

    python benchmarks/bench_overhead.py [--processes 3] [--rounds 20] [--calls 100] [--only openai]

Timings on a shared virtual machine move by tens of percent from one run (or day) to the next. So
`--instructions` counts instead: each scenario runs bare and metered under valgrind's callgrind,
which counts the CPU instructions of the measured calls only (warm-up excluded, histogram records
and a metric collection included), the same from run to run whatever else the machine does.

    python benchmarks/bench_overhead.py --instructions [--calls 100] [--only openai]

`--paired` times instead many short bare and metered blocks in pairs, in a random order within
each pair, and reports the median of the pairs' differences with a 95 % confidence interval (from
the order statistics of the differences, which assume nothing of their distribution). One block's
time moves by hundreds of µs on this machine, but the disturbances hit a pair's two blocks alike
or at random, so the median of many differences is tight where the best-of-rounds figures above
are not.

    python benchmarks/bench_overhead.py --paired [--pairs 600] [--calls 10] [--only openai] [--paired-processes 3]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx2
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import genai_meter
from _callgrind import LAYOUT_PADS, counted, drain_at_collection, instructions_per_call
from genai_meter._runtime import configure
from genai_meter.fake_provider import FakeProvider

CHUNKS = 20
OPENAI_USAGE = {"prompt_tokens": 1200, "completion_tokens": 300, "prompt_tokens_details": {"cached_tokens": 256}}
ANTHROPIC_USAGE = {"input_tokens": 1200, "output_tokens": 300, "cache_read_input_tokens": 256}
GEMINI_USAGE = {"promptTokenCount": 1200, "candidatesTokenCount": 300, "cachedContentTokenCount": 256}


class _NullExporter(SpanExporter):
    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class Replay:
    """Answers every request with the body the fake provider gave for the same kind of request."""

    def __init__(self) -> None:
        self.bodies: dict[tuple[str, bool, bool], tuple[bytes, str]] = {}

    @staticmethod
    def key(request: httpx2.Request) -> tuple[str, bool, bool]:
        path = request.url.path
        body = json.loads(request.content) if request.content else {}
        stream = bool(body.get("stream")) or "streamGenerateContent" in path
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return path.split(":")[0], stream, include_usage

    def record(self, provider: FakeProvider, path: str, body: dict[str, Any], usage: dict[str, Any]) -> None:
        headers = {"x-fake-usage": json.dumps(usage), "x-fake-chunks": str(CHUNKS), "authorization": "Bearer k",
                   "x-api-key": "k", "anthropic-version": "2023-06-01"}
        with httpx2.Client() as http:
            response = http.post(provider.base_url + path, json=body, headers=headers)
            response.raise_for_status()
            request = httpx2.Request("POST", "http://x" + path, json=body)
            self.bodies[self.key(request)] = (response.content, response.headers["content-type"])

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        content, content_type = self.bodies[self.key(request)]
        return httpx2.Response(200, content=content, headers={"content-type": content_type})


def record_bodies() -> Replay:
    replay = Replay()
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}
    message = {"model": "claude-sonnet-4-6", "max_tokens": 512, "messages": [{"role": "user", "content": "hello"}]}
    gemini = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}
    with FakeProvider() as provider:
        replay.record(provider, "/v1/chat/completions", chat, OPENAI_USAGE)
        replay.record(provider, "/v1/chat/completions", {**chat, "stream": True}, OPENAI_USAGE)
        replay.record(provider, "/v1/chat/completions",
                      {**chat, "stream": True, "stream_options": {"include_usage": True}}, OPENAI_USAGE)
        replay.record(provider, "/v1/messages", message, ANTHROPIC_USAGE)
        replay.record(provider, "/v1/messages", {**message, "stream": True}, ANTHROPIC_USAGE)
        replay.record(provider, "/v1beta/models/gemini-2.5-flash:generateContent", gemini, GEMINI_USAGE)
        replay.record(provider, "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", gemini,
                      GEMINI_USAGE)
    return replay


@dataclass
class Scenario:
    label: str
    instrumentor: Callable[[], Any]
    client: Any
    call: Callable[[Any], None]


def _attributed(func: Callable[[Any], None]) -> Callable[[Any], None]:
    def call(client: Any) -> None:
        with genai_meter.attribute(user="user-1", tenant="acme", feature="chat"):
            func(client)

    return call


def scenarios(replay: Replay, only: str | None) -> list[Scenario]:
    found: list[Scenario] = []
    transport = httpx2.MockTransport(replay)
    if only in (None, "openai"):
        import openai

        from genai_meter.instrumentation.openai import OpenAIInstrumentor

        client = openai.OpenAI(api_key="sk-bench", base_url="https://api.openai.com/v1", max_retries=0,
                               http_client=httpx2.Client(transport=transport))
        messages: Any = [{"role": "user", "content": "hello"}]

        def chat(c: Any) -> None:
            c.chat.completions.create(model="gpt-4o-mini", messages=messages)

        def chat_stream(c: Any) -> None:
            for _chunk in c.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True):
                pass

        found += [Scenario("openai chat", OpenAIInstrumentor, client, _attributed(chat)),
                  Scenario(f"openai chat, {CHUNKS}-chunk stream", OpenAIInstrumentor, client, _attributed(chat_stream))]
    if only in (None, "anthropic"):
        import anthropic

        from genai_meter.instrumentation.anthropic import AnthropicInstrumentor

        claude = anthropic.Anthropic(api_key="sk-ant-bench", base_url="https://api.anthropic.com", max_retries=0,
                                     http_client=httpx2.Client(transport=transport))
        prompt: Any = [{"role": "user", "content": "hello"}]

        def message(c: Any) -> None:
            c.messages.create(model="claude-sonnet-4-6", max_tokens=512, messages=prompt)

        def message_stream(c: Any) -> None:
            for _event in c.messages.create(model="claude-sonnet-4-6", max_tokens=512, messages=prompt, stream=True):
                pass

        found += [Scenario("anthropic messages", AnthropicInstrumentor, claude, _attributed(message)),
                  Scenario(f"anthropic messages, {CHUNKS}-delta stream", AnthropicInstrumentor, claude,
                           _attributed(message_stream))]
    if only in (None, "gemini"):
        from google import genai
        from google.genai import types

        from genai_meter.instrumentation.google_genai import GoogleGenAIInstrumentor

        gemini = genai.Client(api_key="bench", http_options=types.HttpOptions(
            base_url="https://generativelanguage.googleapis.com", api_version="v1beta",
            httpx_client=httpx2.Client(transport=transport)))

        def generate(c: Any) -> None:
            c.models.generate_content(model="gemini-2.5-flash", contents="hello")

        def generate_stream(c: Any) -> None:
            for _chunk in c.models.generate_content_stream(model="gemini-2.5-flash", contents="hello"):
                pass

        found += [Scenario("gemini generate_content", GoogleGenAIInstrumentor, gemini, _attributed(generate)),
                  Scenario(f"gemini, {CHUNKS}-chunk stream", GoogleGenAIInstrumentor, gemini,
                           _attributed(generate_stream))]
    return found


def _time_block(
    func: Callable[[Any], None], client: Any, calls: int, collect: Callable[[], Any]
) -> tuple[float, float]:
    """(calling-thread CPU µs per call, whole-process CPU µs per call).

    The first is the cost on the call path: what the app's thread spends. The second adds every
    other thread (the span processor's export, the metric collection that records the queued
    histogram values: `collect` runs inside the timed block) so work moved off the call path is
    still counted.
    """
    gc.collect()
    gc.disable()
    try:
        thread_start, process_start = time.thread_time_ns(), time.process_time_ns()
        for _ in range(calls):
            func(client)
        thread_end = time.thread_time_ns()
        collect()
        process_end = time.process_time_ns()
        return (thread_end - thread_start) / calls / 1000.0, (process_end - process_start) / calls / 1000.0
    finally:
        gc.enable()


def _collector(tracer_provider: TracerProvider, reader: InMemoryMetricReader) -> Callable[[], None]:
    """What a timed block ends with: a metric collection (which records the queued histogram values
    and makes the deferred call endings) and the span processor's export."""

    def collect() -> None:
        reader.get_metrics_data()
        tracer_provider.force_flush()

    return collect


def measure(scenario: Scenario, calls: int, rounds: int, tracer_provider: TracerProvider,
            meter_provider: MeterProvider, reader: InMemoryMetricReader) -> dict[str, Any]:
    instrumentor = scenario.instrumentor()
    collect = _collector(tracer_provider, reader)
    bare_path, bare_total, metered_path, metered_total = [], [], [], []
    for _ in range(rounds):
        scenario.call(scenario.client)
        path, total = _time_block(scenario.call, scenario.client, calls, collect)
        bare_path.append(path)
        bare_total.append(total)
        instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
        configure(ledger_url="off")
        scenario.call(scenario.client)
        path, total = _time_block(scenario.call, scenario.client, calls, collect)
        metered_path.append(path)
        metered_total.append(total)
        instrumentor.uninstrument()
    # Best block of each side: the least disturbed measurement of each (as timeit advises).
    return {
        "bare_us": min(bare_path),
        "metered_us": min(metered_path),
        "call_path_overhead_us": min(metered_path) - min(bare_path),
        "total_cpu_overhead_us": min(metered_total) - min(bare_total),
    }


def measure_paired(scenario: Scenario, calls: int, pairs: int, seed: int, tracer_provider: TracerProvider,
                   meter_provider: MeterProvider, reader: InMemoryMetricReader) -> dict[str, Any]:
    """Paired differences (metered minus bare, µs per call) of `pairs` pairs of `calls`-call blocks.

    Instrumented once: a bare block runs with genai-meter's wrappers passing every call straight to
    the SDK (what they do when OTel instrumentation is suppressed: ~100 Python opcodes a call, counted
    as the bare SDK's here, so the overhead is understated by that much), because instrumenting and
    configuring anew before each metered block would leave its first calls with cold caches."""
    from genai_meter.instrumentation import _metering

    rng = random.Random(seed)
    instrumentor = scenario.instrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    configure(ledger_url="off")
    metered_check = _metering._suppressed
    collect = _collector(tracer_provider, reader)

    def block(metered: bool) -> tuple[float, float]:
        _metering._suppressed = metered_check if metered else (lambda: True)
        scenario.call(scenario.client)  # untimed
        return _time_block(scenario.call, scenario.client, calls, collect)

    path_diffs, total_diffs, bare_paths = [], [], []
    try:
        for _ in range(pairs):
            first_metered = rng.random() < 0.5
            first = block(first_metered)
            second = block(not first_metered)
            metered, bare = (first, second) if first_metered else (second, first)
            path_diffs.append(metered[0] - bare[0])
            total_diffs.append(metered[1] - bare[1])
            bare_paths.append(bare[0])
    finally:
        _metering._suppressed = metered_check
        instrumentor.uninstrument()
    return {
        "bare_us": statistics.median(bare_paths),
        "call_path": median_interval(path_diffs),
        "total_cpu": median_interval(total_diffs),
    }


def median_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """(low, median, high): the median and a distribution-free 95 % confidence interval for it,
    between the order statistics that the binomial distribution of values below the median puts
    1.96 standard deviations either side of the middle."""
    ordered = sorted(values)
    n = len(ordered)
    half_width = 1.96 * math.sqrt(n) / 2
    low = max(math.floor(n / 2 - half_width), 0)
    high = min(math.ceil(n / 2 + half_width), n - 1)
    return ordered[low], statistics.median(ordered), ordered[high]


def paired(args: argparse.Namespace) -> None:
    """One process's paired rows, printed (or, with `--json`, one JSON line for a parent); with
    `--paired-processes N`, N such processes one after the other, each row per process and the median
    of the processes' medians: the overhead moves by up to half from one process to the next (seen
    2026-11-23: the OpenAI call 86 to 135 µs on one machine within the hour), so one process does
    not settle a target that lies within that range."""
    if args.paired_processes > 1 and not args.json:
        _paired_processes(args)
        return
    tracer_provider, meter_provider, reader = _global_providers()
    if not args.json:
        print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}; "
              f"{args.pairs} pairs of {args.calls}-call blocks (bare, metered) in random order per scenario")
        print(f"{'scenario':38s} {'bare':>8s} {'call path (95% CI)':>26s} {'total CPU (95% CI)':>26s}  (µs per call)")
    rows = {}
    for number, scenario in enumerate(scenarios(record_bodies(), args.only)):
        row = rows[scenario.label] = measure_paired(scenario, args.calls, args.pairs, args.seed + number,
                                                    tracer_provider, meter_provider, reader)
        if not args.json:
            print(_paired_line(scenario.label, row), flush=True)
    tracer_provider.shutdown()
    if args.json:
        print(json.dumps(rows))


def _paired_line(label: str, row: dict[str, Any]) -> str:
    path_low, path, path_high = row["call_path"]
    total_low, total, total_high = row["total_cpu"]
    return (f"{label:38s} {row['bare_us']:8.1f} {path:8.1f} ({path_low:6.1f} .. {path_high:6.1f})  "
            f"{total:8.1f} ({total_low:6.1f} .. {total_high:6.1f})")


def _child_rows(arguments: list[str], only: str | None) -> dict[str, dict[str, Any]]:
    """The rows one child process of this script measures and prints as its last line (`--json`)."""
    command = [sys.executable, __file__, "--json", *arguments, *(["--only", only] if only else [])]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    rows: dict[str, dict[str, Any]] = json.loads(output.strip().splitlines()[-1])
    return rows


def _paired_processes(args: argparse.Namespace) -> None:
    runs = [
        _child_rows(["--paired", "--pairs", str(args.pairs), "--calls", str(args.calls),
                     "--seed", str(args.seed + 100 * number)], args.only)
        for number in range(args.paired_processes)
    ]
    print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}; "
          f"{args.paired_processes} processes x {args.pairs} pairs of {args.calls}-call blocks")
    print(f"{'scenario':38s} {'bare':>8s} {'call path (95% CI)':>26s} {'total CPU (95% CI)':>26s}  (µs per call)")
    for label in runs[0]:
        for number, run in enumerate(runs, 1):
            print(_paired_line(f"{label} [{number}]", run[label]))
        path = statistics.median(run[label]["call_path"][1] for run in runs)
        total = statistics.median(run[label]["total_cpu"][1] for run in runs)
        print(f"{label + ' [median of processes]':38s} {'':8s} {path:8.1f} {'':18s}  {total:8.1f}", flush=True)


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


def _global_providers(schedule_delay_millis: int = 5000) -> tuple[TracerProvider, MeterProvider, InMemoryMetricReader]:
    """Tracer and meter providers set globally, as `opentelemetry-instrument` sets them."""
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(
        BatchSpanProcessor(_NullExporter(), max_queue_size=100_000, schedule_delay_millis=schedule_delay_millis)
    )
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    return tracer_provider, meter_provider, reader


def _one_process(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    tracer_provider, meter_provider, reader = _global_providers()
    rows = {
        scenario.label: measure(scenario, args.calls, args.rounds, tracer_provider, meter_provider, reader)
        for scenario in scenarios(record_bodies(), args.only)
    }
    tracer_provider.shutdown()
    return rows


def _counted_child(label: str, mode: str, calls: int) -> None:
    """Inside valgrind: warm up, then switch callgrind's instrumentation on for `calls` calls.

    `mode` "call-path" is metered with the calls only in the count: what the app's thread runs (the
    endings genai-meter defers and the histogram records are left out); "metered" counts the metric
    collection after the calls too, which makes what was deferred: all the work metering adds."""
    metered = mode != "bare"
    # Exports only when asked, so the export thread's timing does not change the count; the same
    # for genai-meter's histogram records (see `drain_at_collection`).
    tracer_provider, meter_provider, reader = _global_providers(schedule_delay_millis=3_600_000)
    drain_at_collection()
    [scenario] = [s for s in scenarios(record_bodies(), None) if s.label == label]
    if metered:
        scenario.instrumentor().instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
        configure(ledger_url="off")
    for _ in range(50):
        scenario.call(scenario.client)
    reader.get_metrics_data()
    with counted():
        for _ in range(calls):
            scenario.call(scenario.client)
        if mode != "call-path":
            reader.get_metrics_data()  # makes the endings and histogram values the calls deferred


def _instructions_per_call(label: str, mode: str, calls: int, layout_pad: int) -> float:
    child = [sys.executable, __file__, "--counted-child", label, mode, "--calls", str(calls)]
    return instructions_per_call(child, calls, layout_pad)


def count_instructions(args: argparse.Namespace) -> None:
    labels = [scenario.label for scenario in scenarios(record_bodies(), args.only)]
    print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}; "
          f"callgrind instruction counts over {args.calls} calls after 50 warm-up calls; "
          f"medians over {len(LAYOUT_PADS)} address layouts (see benchmarks/_callgrind.py)")
    print(f"{'scenario':38s} {'bare':>12s} {'metered':>12s} {'overhead':>10s} {'of bare':>8s} {'call path':>10s}"
          "  (instructions per call)")
    # Counts do not depend on what else runs: two children at once, one per core.
    modes = ("bare", "metered", "call-path")
    with ThreadPoolExecutor(max_workers=2) as pool:
        counts = {(label, mode, pad): pool.submit(_instructions_per_call, label, mode, args.calls, pad)
                  for label in labels for mode in modes for pad in LAYOUT_PADS}
    for label in labels:
        bare, metered, path = (
            statistics.median(counts[label, mode, pad].result() for pad in LAYOUT_PADS) for mode in modes
        )
        print(f"{label:38s} {bare:12,.0f} {metered:12,.0f} {metered - bare:10,.0f} {(metered - bare) / bare:8.1%} "
              f"{path - bare:10,.0f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100, help="calls per timed block")
    parser.add_argument("--rounds", type=int, default=20, help="bare/instrumented block pairs per scenario")
    parser.add_argument("--processes", type=int, default=3, help="separate processes; the median is reported")
    parser.add_argument("--only", choices=("openai", "anthropic", "gemini"))
    parser.add_argument("--instructions", action="store_true",
                        help="count CPU instructions under valgrind's callgrind instead of timing")
    parser.add_argument("--paired", action="store_true",
                        help="median of paired block differences with a 95%% confidence interval instead")
    parser.add_argument("--pairs", type=int, default=600, help="block pairs per scenario with --paired")
    parser.add_argument("--seed", type=int, default=1, help="the order within pairs with --paired")
    parser.add_argument("--paired-processes", type=int, default=1,
                        help="with --paired: separate processes one after the other, each reported")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # one process's rows
    parser.add_argument("--counted-child", nargs=2, metavar=("LABEL", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.counted_child:
        _counted_child(args.counted_child[0], args.counted_child[1], args.calls)
        return
    if args.instructions:
        count_instructions(args)
        return
    if args.paired:
        paired(args)
        return
    if args.json:
        print(json.dumps(_one_process(args)))
        return
    # Timings differ by several percent from one interpreter process to the next (hash seeds,
    # memory layout), more than within one: each process measures, and the median is reported.
    runs = [
        _child_rows(["--calls", str(args.calls), "--rounds", str(args.rounds)], args.only)
        for _ in range(args.processes)
    ]
    print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}; "
          f"{args.processes} processes x {args.rounds} rounds x {args.calls} calls per block; medians of the processes")
    print(f"{'scenario':38s} {'bare':>8s} {'metered':>8s} {'call path':>10s} {'total CPU':>10s}  (µs per call)")
    for label in runs[0]:
        row = {key: statistics.median(run[label][key] for run in runs) for key in runs[0][label]}
        spread = [run[label]["call_path_overhead_us"] for run in runs]
        print(f"{label:38s} {row['bare_us']:8.1f} {row['metered_us']:8.1f} "
              f"{row['call_path_overhead_us']:10.1f} {row['total_cpu_overhead_us']:10.1f}"
              f"  (call path per process: {', '.join(f'{value:.0f}' for value in spread)})", flush=True)
    print(f"{'price a call (resolve + cost)':38s} {measure_pricing():.2f} µs")


if __name__ == "__main__":
    main()
