"""Overhead and what gets recorded: genai-meter beside its peers and the bare SDK, in one interleaved run.

Peers: the official OTel GenAI OpenAI instrumentation (opentelemetry-instrumentation-openai-v2),
OpenLLMetry's OpenAI and Anthropic instrumentations and OpenLIT. They pin other SDK majors than the
project's own environment (openlit: openai<3, anthropic<1), so this script builds a virtualenv of
its own (default benchmarks/.venv-peers), installs genai-meter from this checkout plus the peers
(benchmarks/peers/requirements.txt + constraints.txt), and re-runs itself inside it. Every
contestant uses the same SDK versions, the same in-process transport (benchmarks/peers/workloads.py)
and the same OTel SDK set-up (benchmarks/peers/contestants.py), each in a process of its own.

Rounds interleave the contestants in a shuffled order; in each round a contestant's cost is its
median CPU time per call (process_time: the span processor's thread counts too, and the batch is
flushed inside the timed block) over a few blocks, with the cyclic GC paused inside each block.
Overhead is that minus the bare SDK's in the same round; the report gives its median and range
over the rounds. Afterwards each contestant makes one call of each kind into an in-memory exporter
and the report says what its spans carry: tokens (on streams too), cached tokens, cost, the user.

    python benchmarks/bench_peers.py              # ~8 min on 2 cores (first run adds the install)
    python benchmarks/bench_peers.py --quick      # ~1 min, for a smoke run
    python benchmarks/bench_peers.py --no-write   # print only, leave docs/benchmarks-peers.md alone
    python benchmarks/bench_peers.py --instructions   # callgrind instruction counts instead (~25 min)

`--instructions` runs each contestant's workloads under valgrind's callgrind, which counts the CPU
instructions of the measured calls only (after warm-up; span export and a metric collection
included): the same from run to run, whatever else the shared machine does, where CPU times can
move by tens of percent between rounds. It prints a table (medians over six address layouts, the
verdict) and the same without the type attribute cache's misses (steadier from layout to layout,
for comparing codes; see `_callgrind.instruction_counts`), and leaves the doc alone.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _callgrind import LAYOUT_PADS, counted, drain_at_collection, instruction_counts

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PEERS = HERE / "peers"
DEFAULT_VENV = HERE / ".venv-peers"
DOC = REPO / "docs" / "benchmarks-peers.md"
RESULT_TAG = "BENCH_PEERS_RESULT "
WORKLOAD_LABELS = {
    "openai.call": "OpenAI chat call",
    "openai.stream": "OpenAI chat stream (20 chunks)",
    "anthropic.call": "Anthropic messages call",
    "anthropic.stream": "Anthropic messages stream (20 events)",
}
VERSIONED = (
    "genai-meter",
    "openai",
    "anthropic",
    "httpx",
    "opentelemetry-sdk",
    "opentelemetry-instrumentation-openai-v2",
    "opentelemetry-util-genai",
    "opentelemetry-instrumentation-openai",
    "opentelemetry-instrumentation-anthropic",
    "openlit",
)


# --- outer: build the virtualenv, then run inside it --------------------------------------------


def _venv_python(path: Path) -> Path:
    return path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _pip(python: Path, *args: str) -> None:
    command = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *args]
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True)


def _install_genai_meter(python: Path) -> None:
    """Install this checkout, non-editable, from a copy: an in-tree build would write build/ and
    egg-info files next to the sources. Re-done on every run so the figures are the tree's own."""
    with tempfile.TemporaryDirectory(prefix="genai-meter-src-") as tmp:
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(REPO / name, Path(tmp) / name)
        shutil.copytree(REPO / "src", Path(tmp) / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
        _pip(python, "--no-deps", "--force-reinstall", tmp)


def ensure_venv(path: Path, reinstall: bool) -> Path:
    python = _venv_python(path)
    marker = path / ".bench-peers-installed"
    wanted = (PEERS / "requirements.txt").read_text() + (PEERS / "constraints.txt").read_text()
    if reinstall and path.exists():
        shutil.rmtree(path)
    if not python.exists():
        print(f"creating {path}", flush=True)
        venv.EnvBuilder(with_pip=True).create(path)
    if not marker.exists() or marker.read_text() != wanted:
        # genai-meter's own dependencies first (read from pyproject), then the peers, all under one
        # set of constraints so every contestant shares the OTel SDK and the SDK majors.
        import tomllib

        deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
        _pip(python, *deps, "-r", str(PEERS / "requirements.txt"), "-c", str(PEERS / "constraints.txt"))
        marker.write_text(wanted)
    _install_genai_meter(python)
    return python


# --- one contestant, in its own process ---------------------------------------------------------


def _time_block(func: Any, client: Any, calls: int, flush: Any) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.process_time_ns()
        for _ in range(calls):
            func(client)
        flush()
        return (time.process_time_ns() - start) / calls / 1000.0
    finally:
        gc.enable()


def _llm_span(spans: list[Any]) -> Any:
    def weight(span: Any) -> int:
        return sum(1 for key in (span.attributes or {}) if key.startswith(("gen_ai.", "llm.", "genai_meter.")))

    return max(spans, key=weight) if spans else None


def _first(attrs: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in attrs:
            return attrs[key]
    return None


def _inspect(spans: list[Any]) -> dict[str, Any]:
    """What the call's spans carry, judged by value where names differ between tools."""
    from workloads import CACHE_READ_TOKENS, FEATURE, TENANT, USER

    span = _llm_span(spans)
    attrs: dict[str, Any] = dict(span.attributes or {}) if span is not None else {}
    every: dict[str, Any] = {}
    for one in spans:
        every.update(one.attributes or {})
    costs = {
        key: value
        for key, value in every.items()
        if "cost" in key and isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
    }
    return {
        "spans": len(spans),
        "input_tokens": _first(
            attrs, ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.usage.prompt_tokens")
        ),
        "output_tokens": _first(
            attrs, ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.usage.completion_tokens")
        ),
        "cache_read_key": next(
            (key for key, value in attrs.items() if "cache" in key and value == CACHE_READ_TOKENS), None
        ),
        "cost": costs,
        "user_key": next((key for key, value in every.items() if value == USER), None),
        "tenant_key": next((key for key, value in every.items() if value == TENANT), None),
        "feature_key": next((key for key, value in every.items() if value == FEATURE), None),
        "attribute_keys": sorted(attrs),
    }


def run_contestant(name: str, calls: int, stream_calls: int, blocks: int, warmup: int) -> dict[str, Any]:
    sys.path.insert(0, str(PEERS))
    from contestants import CONTESTANTS, pipeline, switch_on
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from workloads import workloads

    pipe = pipeline()
    scope = switch_on(name, pipe)
    sdks = CONTESTANTS[name][1]
    chosen = {key: value for key, value in workloads(scope).items() if key.split(".")[0] in sdks}
    clients = {key: factory() for key, (factory, _call) in chosen.items()}

    def flush() -> None:
        # Inside the timed block: span export, and a metric collection (which also records the
        # histogram values genai-meter queues off the call path), so every tool pays for all its work.
        pipe.tracer_provider.force_flush()
        pipe.reader.get_metrics_data()

    timings: dict[str, list[float]] = {}
    for key, (_factory, call) in chosen.items():
        n = stream_calls if key.endswith("stream") else calls
        for _ in range(warmup):
            call(clients[key])
        timings[key] = [_time_block(call, clients[key], max(1, n // blocks), flush) for _ in range(blocks)]

    # What it records: one call of each kind, into an in-memory exporter on the same provider.
    memory = InMemorySpanExporter()
    pipe.tracer_provider.add_span_processor(SimpleSpanProcessor(memory))
    records: dict[str, Any] = {}
    for key, (_factory, call) in chosen.items():
        flush()
        memory.clear()
        call(clients[key])
        flush()
        records[key] = _inspect(list(memory.get_finished_spans()))
    data = pipe.reader.get_metrics_data()
    metric_names = sorted(
        {m.name for rm in (data.resource_metrics if data else []) for sm in rm.scope_metrics for m in sm.metrics}
    )
    budget = None
    if name.endswith("+budget"):
        from workloads import TENANT

        import genai_meter

        budget = [
            {"budget": b.budget, "requests": b.requests, "spend_usd": b.spend_usd, "mode": b.mode}
            for b in genai_meter.budget_status(tenant=TENANT)
        ]
    pipe.tracer_provider.shutdown()
    return {
        "budget": budget,
        "contestant": name,
        "us_per_call": {key: statistics.median(values) for key, values in timings.items()},
        "blocks": timings,
        "records": records,
        "metrics": metric_names,
    }


# --- the driver: rounds, report -----------------------------------------------------------------


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for dist in VERSIONED:
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            found[dist] = "not installed"
    return found


def _machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    models = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")]
    cpu = models[0] if models else platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} CPUs, {platform.python_implementation()} {platform.python_version()}"


def _spawn(name: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--contestant",
        name,
        "--calls",
        str(args.calls),
        "--stream-calls",
        str(args.stream_calls),
        "--blocks",
        str(args.blocks),
        "--warmup",
        str(args.warmup),
    ]
    env = dict(os.environ, PYTHONHASHSEED="0")
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            result: dict[str, Any] = json.loads(line[len(RESULT_TAG) :])
            return result
    raise RuntimeError(f"contestant {name} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")


def _fmt_range(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} ({min(values):.0f}..{max(values):.0f})"


def _yes(value: Any) -> str:
    return "yes" if value else "no"


def _records_cell(record: dict[str, Any] | None) -> list[str]:
    if record is None:
        return ["—"] * 4
    tokens = (
        f"{record['input_tokens']} / {record['output_tokens']}"
        if record["input_tokens"] is not None or record["output_tokens"] is not None
        else "no"
    )
    cost = ", ".join(f"`{key}` = {value:.7f}" for key, value in record["cost"].items()) or "no"
    return [str(record["spans"]), tokens, f"`{record['cache_read_key']}`" if record["cache_read_key"] else "no", cost]


def report(results: list[dict[str, Any]], args: argparse.Namespace, started: float) -> tuple[str, list[str]]:
    from contestants import CONTESTANTS

    rounds = len({r["round"] for r in results})
    by_round: dict[int, dict[str, dict[str, Any]]] = {}
    for r in results:
        by_round.setdefault(r["round"], {})[r["contestant"]] = r
    names = list(CONTESTANTS)
    versions = _versions()
    lines = [
        "## Peer comparison",
        "",
        "Generated by `python benchmarks/bench_peers.py"
        + (" --quick" if args.quick else "")
        + "`: genai-meter beside the bare SDK and its peers, each in its own process on the same SDK "
        "versions, the same in-process transport (no sockets) and the same OTel SDK set-up "
        "(BatchSpanProcessor into a no-op exporter, flushed inside the timed block; an "
        "InMemoryMetricReader). Message content capture is off for every tool, openlit's other "
        "instrumentors (HTTP clients, web frameworks) are disabled and it prices from a local "
        'price file. genai-meter runs with `ledger_url="off"`, stream-usage injection on for '
        "api.openai.com, and each call inside `genai_meter.attribute(user=, tenant=, feature=)`. "
        "Every call passes the end user the SDK's way (`user=`, `metadata.user_id`). The '+budget' row "
        "adds a hard per-tenant budget (in-process store) that every call is checked against.",
        "",
        f"- machine: {_machine()}",
        f"- rounds: {rounds} (contestant order shuffled per round), per round and contestant "
        f"{args.blocks} blocks of {args.calls // args.blocks} calls / {args.stream_calls // args.blocks} "
        f"streams after {args.warmup} warm-up calls; CPU time (`time.process_time_ns`), GC paused in blocks",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        f"- wall time of the run: {time.time() - started:.0f} s",
        "",
        "### Overhead per call (µs of CPU, contestant minus bare SDK in the same round: median (min..max) over rounds)",
        "",
        "| contestant | " + " | ".join(WORKLOAD_LABELS.values()) + " |",
        "| --- | " + " | ".join("---:" for _ in WORKLOAD_LABELS) + " |",
    ]
    overheads: dict[str, dict[str, list[float]]] = {}
    for name in names:
        for key in WORKLOAD_LABELS:
            for per in by_round.values():
                if key in per.get(name, {}).get("us_per_call", {}) and key in per["bare"]["us_per_call"]:
                    diff = per[name]["us_per_call"][key] - per["bare"]["us_per_call"][key]
                    overheads.setdefault(name, {}).setdefault(key, []).append(diff)
    bare_cells = []
    for key in WORKLOAD_LABELS:
        values = [per["bare"]["us_per_call"][key] for per in by_round.values()]
        bare_cells.append(f"{_fmt_range(values)} µs absolute")
    lines.append("| bare SDK | " + " | ".join(bare_cells) + " |")
    for name in names[1:]:
        cells = [_fmt_range(overheads[name][key]) if key in overheads.get(name, {}) else "—" for key in WORKLOAD_LABELS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")

    first = results[0]["round"]
    records = {name: by_round[first][name]["records"] for name in names}
    metrics = {name: by_round[first][name]["metrics"] for name in names}
    lines += [
        "",
        "### What each records (one call of each kind, spans in an in-memory exporter)",
        "",
        "Tokens are the input / output token attributes on the call's span (`no`: absent). The "
        "stream request does not ask for usage itself (`stream_options` unset): tokens on an OpenAI "
        "stream come only from a tool that asks the API for them. Cost: every span attribute with "
        "`cost` in its name and a positive value. Expected cost: OpenAI $0.0003408 (1,200 input of "
        "which 256 cached, 300 output, gpt-4o-mini); Anthropic $0.0081768 (1,200 uncached + 256 "
        "cache-read input, 300 output, Claude Sonnet 4.5).",
        "",
        "| contestant | call | spans | tokens in / out | cached tokens | cost on the span | user | tenant, feature |",
        "| --- | --- | ---: | --- | --- | --- | --- | --- |",
    ]
    for name in names[1:]:
        if name.endswith("+budget"):
            continue  # same spans as genai-meter's
        for key, label in WORKLOAD_LABELS.items():
            record = records[name].get(key)
            if record is None:
                continue
            cells = _records_cell(record)
            user = f"`{record['user_key']}`" if record["user_key"] else "no"
            tf = (
                f"`{record['tenant_key']}`, `{record['feature_key']}`"
                if record["tenant_key"] and record["feature_key"]
                else "no"
            )
            lines.append(f"| {name} | {label} | " + " | ".join(cells) + f" | {user} | {tf} |")
    for name in names:
        for per in by_round.values():
            for status in per[name].get("budget") or []:
                lines += [
                    "",
                    f"{name}: its {status['mode']} budget `{status['budget']}` was checked, reserved against and "
                    f"settled on every call: {status['requests']} requests and ${status['spend_usd']:.4f} counted "
                    "in the round's process (warm-up, timed and checked calls).",
                ]
                break
            break
    lines += [
        "",
        "Notes: genai-meter's OpenAI stream figure includes the SDK parsing the extra usage chunk that "
        "genai-meter asks the API for (`stream_options.include_usage`), work the other tools skip because "
        "they do not get tokens on those streams. Where the API reports no usage, openlit estimates "
        "tokens from the text length (characters / 2) and prices that estimate.",
    ]
    lines += ["", "Metric instruments recorded:", ""]
    for name in names[1:]:
        lines.append(f"- {name}: " + (", ".join(f"`{m}`" for m in metrics[name]) or "none"))

    verdict = []
    for key, label in WORKLOAD_LABELS.items():
        ours = overheads["genai-meter"].get(key)
        budgeted = overheads.get("genai-meter+budget", {}).get(key)
        peers = {
            name: statistics.median(overheads[name][key])
            for name in names
            if not name.startswith(("bare", "genai-meter")) and key in overheads.get(name, {})
        }
        if not ours or not peers:
            continue
        leanest = min(peers, key=lambda n: peers[n])
        mine = statistics.median(ours)
        ratio = mine / peers[leanest] if peers[leanest] > 0 else float("inf")
        verdict.append(
            f"- {label}: genai-meter {mine:.0f} µs vs leanest peer {leanest} {peers[leanest]:.0f} µs "
            f"→ {ratio:.2f}x ({'meets' if ratio <= 0.5 else 'misses'} the <= 0.5x target)"
            + (f"; with a hard budget {statistics.median(budgeted):.0f} µs" if budgeted else "")
        )
    lines += ["", "### Target: genai-meter's overhead at most half the leanest peer's", "", *verdict, ""]
    return "\n".join(lines), verdict


def count_contestant(name: str, workload: str, calls: int, warmup: int, call_path: bool = False) -> None:
    """Inside valgrind: warm up, then count `calls` calls, with the span export and a metric
    collection (all the work a tool adds), or without them (`call_path`: what the app's thread runs;
    the batch processor exports from its own thread, and genai-meter makes its deferred call endings
    at the collection)."""
    sys.path.insert(0, str(PEERS))
    from contestants import pipeline, switch_on
    from workloads import workloads

    drain_at_collection()
    pipe = pipeline()
    factory, call = workloads(switch_on(name, pipe))[workload]
    client = factory()
    for _ in range(warmup):
        call(client)
    pipe.tracer_provider.force_flush()
    pipe.reader.get_metrics_data()
    with counted():
        for _ in range(calls):
            call(client)
        if not call_path:
            pipe.tracer_provider.force_flush()
            pipe.reader.get_metrics_data()


def _instructions(
    name: str, workload: str, calls: int, warmup: int, call_path: bool, layout_pad: int
) -> tuple[float, float]:
    """(instructions per call, the same without the type attribute cache's misses)."""
    child = [sys.executable, str(Path(__file__).resolve()), "--inner", "--count", name, workload,
             "--calls", str(calls), "--warmup", str(warmup), *(["--call-path"] if call_path else [])]
    return instruction_counts(child, calls, layout_pad)


def drive_instructions(args: argparse.Namespace) -> int:
    from concurrent.futures import ThreadPoolExecutor


    sys.path.insert(0, str(PEERS))
    from contestants import CONTESTANTS

    calls = 20 if args.quick else 60
    pads = LAYOUT_PADS[:1] if args.quick else LAYOUT_PADS
    jobs = [(name, workload) for name, (_packages, sdks) in CONTESTANTS.items() for workload in WORKLOAD_LABELS
            if workload.split(".")[0] in sdks]
    what = "the call path only (no span export or metric collection counted)" if args.call_path else (
        "span export and a metric collection counted")
    print(f"machine: {_machine()}; callgrind, {calls} calls after 30 warm-up calls per workload; {what}; "
          f"medians over {len(pads)} address layouts (see benchmarks/_callgrind.py)", flush=True)
    runs = [(job, pad) for job in jobs for pad in pads]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        found = list(pool.map(lambda run: _instructions(*run[0], calls, 30, args.call_path, run[1]), runs))
    for which, title in ((0, "instructions per call"),
                         (1, "the same without the type attribute cache's misses (see benchmarks/_callgrind.py)")):
        per_layout: dict[tuple[str, str], dict[int, float]] = {}
        for (job, pad), counts_of_run in zip(runs, found, strict=True):
            per_layout.setdefault(job, {})[pad] = counts_of_run[which]
        _print_instructions(title, per_layout, pads)
    return 0


def _print_instructions(title: str, per_layout: dict[tuple[str, str], dict[int, float]], pads: Sequence[int]) -> None:
    """A table of each contestant's overhead (median over the layouts) and the verdict lines."""
    sys.path.insert(0, str(PEERS))
    from contestants import CONTESTANTS

    counts = {job: statistics.median(by_pad.values()) for job, by_pad in per_layout.items()}
    # each layout's overhead (contestant minus the bare SDK in the same layout), for the ranges
    overheads = {
        (name, workload): [by_pad[pad] - per_layout["bare", workload][pad] for pad in pads]
        for (name, workload), by_pad in per_layout.items()
        if name != "bare"
    }
    lines = ["| contestant | " + " | ".join(WORKLOAD_LABELS.values()) + " |",
             "| --- |" + " ---: |" * len(WORKLOAD_LABELS)]
    for name in CONTESTANTS:
        cells = []
        for workload in WORKLOAD_LABELS:
            if (name, workload) not in counts:
                cells.append("—")
            elif name == "bare":
                cells.append(f"{counts[name, workload]:,.0f} absolute")
            else:
                spread = overheads[name, workload]
                cells.append(f"{counts[name, workload] - counts['bare', workload]:,.0f} "
                             f"({min(spread):,.0f}..{max(spread):,.0f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\n{title}, contestant minus bare SDK (medians; range of the layouts' own differences):\n"
          + "\n".join(lines))
    for workload, label in WORKLOAD_LABELS.items():
        over = {name: counts[name, workload] - counts["bare", workload] for name in CONTESTANTS
                if (name, workload) in counts and name != "bare"}
        peers = {name: value for name, value in over.items() if not name.startswith("genai-meter")}
        if peers and "genai-meter" in over:
            leanest = min(peers, key=lambda peer: peers[peer])
            ratios = [mine / peer for mine, peer in zip(overheads["genai-meter", workload],
                                                         overheads[leanest, workload], strict=True)]
            print(f"- {label}: genai-meter {over['genai-meter']:,.0f} vs leanest peer {leanest} "
                  f"{peers[leanest]:,.0f} -> {over['genai-meter'] / peers[leanest]:.2f}x "
                  f"(per layout {', '.join(f'{ratio:.2f}' for ratio in ratios)})", flush=True)


def drive(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(PEERS))
    from contestants import CONTESTANTS

    started = time.time()
    rng = random.Random(args.seed)
    names = list(CONTESTANTS)
    results: list[dict[str, Any]] = []
    print(f"machine: {_machine()}", flush=True)
    for round_no in range(args.rounds):
        order = names[:]
        rng.shuffle(order)
        for name in order:
            result = _spawn(name, args)
            result["round"] = round_no
            results.append(result)
            summary = "  ".join(f"{k} {v:.0f}µs" for k, v in result["us_per_call"].items())
            print(f"round {round_no + 1}/{args.rounds} {name:15s} {summary}", flush=True)
    text, _verdict = report(results, args, started)
    print()
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if not args.no_write:
        DOC.write_text(text)
        print(f"wrote {DOC}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (~1 min), for a smoke run")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=1500, help="non-streaming calls per round and contestant")
    parser.add_argument("--stream-calls", type=int, default=600, help="streams per round and contestant")
    parser.add_argument("--blocks", type=int, default=3, help="timed blocks per workload (median taken)")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="where the peers' virtualenv lives")
    parser.add_argument("--reinstall", action="store_true", help="rebuild the virtualenv from scratch")
    parser.add_argument("--no-write", action="store_true", help=f"do not write {DOC.relative_to(REPO)}")
    parser.add_argument("--json", help="also write the raw per-round results to this file")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--contestant", help=argparse.SUPPRESS)
    parser.add_argument("--instructions", action="store_true", help="count instructions under callgrind instead")
    parser.add_argument("--count", nargs=2, metavar=("CONTESTANT", "WORKLOAD"), help=argparse.SUPPRESS)
    parser.add_argument("--call-path", action="store_true",
                        help="with --instructions: count the calls only (what the app's thread runs)")
    args = parser.parse_args()
    if args.count:
        count_contestant(args.count[0], args.count[1], args.calls, args.warmup, args.call_path)
        return 0
    if args.quick:
        args.rounds, args.calls, args.stream_calls, args.warmup = 2, 300, 150, 30
    if args.contestant:
        result = run_contestant(args.contestant, args.calls, args.stream_calls, args.blocks, args.warmup)
        print(RESULT_TAG + json.dumps(result), flush=True)
        return 0
    if args.inner:
        return drive_instructions(args) if args.instructions else drive(args)
    python = ensure_venv(args.venv.resolve(), args.reinstall)
    forwarded = [a for a in sys.argv[1:] if a != "--reinstall"]
    return subprocess.call([str(python), str(Path(__file__).resolve()), "--inner", *forwarded])


if __name__ == "__main__":
    sys.exit(main())
