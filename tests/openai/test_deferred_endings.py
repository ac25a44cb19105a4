"""Behind the OTel SDK's batch span processor a call's ending (pricing, span attributes and end,
metric sums, ledger row) is recorded off the app's thread (`_span_export`); what is exported must be
what the app's thread would have recorded, and nothing may wait for it in vain: a flush, a metric
collection, the provider's shutdown at exit, `genai_meter.flush()`. Elsewhere calls end as before."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import genai_meter
from genai_meter import names
from genai_meter._runtime import get_runtime
from genai_meter.instrumentation.openai import OpenAIInstrumentor

from ..conftest import Telemetry, fake_provider_settings, instrumented
from .test_chat import EXPECTED_COST, MESSAGES, client, usage_headers


def _pending_endings() -> int:
    return len(get_runtime().metrics.deferred._endings)


@pytest.fixture(autouse=True)
def _drain_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The drain thread's timer out of the way: what a test finds pending is not drained meanwhile."""
    from genai_meter._metrics import _DeferredRecords

    monkeypatch.setattr(_DeferredRecords, "_INTERVAL_S", 3600.0)


def _warm_up(sdk: Any) -> None:
    """A first call, recorded: it puts the meter's queue in the drain thread's care, which wakes the
    thread once (to read the interval again)."""
    sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers())
    genai_meter.flush()


def test_call_ends_off_the_app_thread_with_its_end_time(telemetry: Telemetry, fake_provider: Any) -> None:
    processors = telemetry.tracer_provider._active_span_processor._span_processors
    batch = any(type(p) is BatchSpanProcessor for p in processors)
    sdk = client(fake_provider)
    _warm_up(sdk)
    telemetry.spans()
    telemetry.spans_exporter.clear()
    sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers())
    returned_ns = time.time_ns()
    assert _pending_endings() == (1 if batch else 0)
    assert len(telemetry.spans_exporter.get_finished_spans()) == (0 if batch else 1)
    time.sleep(0.05)
    span = telemetry.only_span()  # (a flush of the provider: the deferred ending is recorded first)
    assert _pending_endings() == 0
    assert span.end_time is not None and span.end_time <= returned_ns  # the call's end, not the drain's
    attrs = dict(span.attributes or {})
    assert attrs[names.COST_USD] == pytest.approx(EXPECTED_COST, abs=1e-12)
    assert (attrs[names.USAGE_INPUT_TOKENS], attrs[names.USAGE_OUTPUT_TOKENS]) == (1000, 500)


def test_the_drain_thread_records_without_any_flush(fake_provider: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from genai_meter._metrics import _DeferredRecords

    monkeypatch.setattr(_DeferredRecords, "_INTERVAL_S", 0.02)  # (read at the next registration)
    with instrumented(OpenAIInstrumentor(), "batch", **fake_provider_settings(fake_provider)) as telemetry:
        sdk = client(fake_provider)
        sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers())
        deadline = time.monotonic() + 10
        while _pending_endings() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _pending_endings() == 0
        assert telemetry.total(names.COST.otel_name) == pytest.approx(EXPECTED_COST, abs=1e-12)


def test_a_processor_that_may_read_spans_at_their_end_keeps_endings_on_the_app_thread(fake_provider: Any) -> None:
    with instrumented(OpenAIInstrumentor(), "batch", **fake_provider_settings(fake_provider)) as telemetry:
        sdk = client(fake_provider)
        _warm_up(sdk)
        sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers())
        assert _pending_endings() == 1
        at_end = InMemorySpanExporter()
        telemetry.tracer_provider.add_span_processor(SimpleSpanProcessor(at_end))
        sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers())
        assert _pending_endings() == 1  # the earlier call's, still waiting; this one ended at once
        [span] = at_end.get_finished_spans()
        assert (span.attributes or {})[names.COST_USD] == pytest.approx(EXPECTED_COST, abs=1e-12)
        assert len(telemetry.spans()) == 3


def test_a_budget_reservation_settles_on_the_app_thread(fake_provider: Any) -> None:
    budgets = {"policies": [{"name": "cap", "scope": "user", "limit_usd": 1.0, "mode": "hard"}]}
    with instrumented(OpenAIInstrumentor(), "batch", **fake_provider_settings(fake_provider, budgets=budgets)):
        _warm_up(client(fake_provider))
        with genai_meter.attribute(user="u1"):
            client(fake_provider).chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers()
            )
        assert _pending_endings() == 0
        [status] = genai_meter.budget_status(user="u1")
        assert status.spend_usd == pytest.approx(EXPECTED_COST, abs=1e-12)


def test_flush_writes_the_ledger_rows_of_deferred_calls(fake_provider: Any, tmp_path: Path) -> None:
    from genai_meter.ledger import open_ledger

    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    with instrumented(OpenAIInstrumentor(), "batch", **fake_provider_settings(fake_provider, ledger_url=url)):
        for _ in range(3):
            client(fake_provider).chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers()
            )
        assert genai_meter.flush(10)
        with open_ledger(url) as ledger:
            rows = list(ledger.export())
    assert len(rows) == 3
    assert sum(row["cost_usd"] for row in rows) == pytest.approx(3 * EXPECTED_COST, abs=1e-12)


_EXIT_APP = """
import json, sys
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

class FileExporter(SpanExporter):
    def export(self, spans):
        with open(sys.argv[2], "a") as out:
            for span in spans:
                out.write(json.dumps([span.name, span.attributes.get("genai_meter.cost.usd")]) + "\\n")
        return SpanExportResult.SUCCESS

def provider():
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(FileExporter(), schedule_delay_millis=3_600_000))
    trace.set_tracer_provider(tracer_provider)

if sys.argv[3] == "provider-first":
    provider()
import genai_meter, openai
from genai_meter.instrumentation.openai import OpenAIInstrumentor
OpenAIInstrumentor().instrument()
genai_meter.configure(ledger_url="off", provider_hosts={"127.0.0.1": "openai"})
if sys.argv[3] == "provider-last":
    provider()
sdk = openai.OpenAI(base_url=sys.argv[1], api_key="sk-test-key", max_retries=0)
for _ in range(3):
    sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                extra_headers={"x-fake-usage": sys.argv[4]})
"""


@pytest.mark.parametrize("order", ["provider-first", "provider-last"])
def test_spans_of_calls_ended_just_before_exit_are_exported(fake_provider: Any, tmp_path: Path, order: str) -> None:
    """Whichever of the provider's exit hook and genai-meter's runs first."""
    import json

    out = tmp_path / "spans.jsonl"
    app = tmp_path / "app.py"
    app.write_text(textwrap.dedent(_EXIT_APP))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "GENAI_METER_"))}
    env["GENAI_METER_LEDGER_URL"] = "off"
    usage = usage_headers()["x-fake-usage"]
    done = subprocess.run(
        [sys.executable, str(app), fake_provider.openai_base_url, str(out), order, usage],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    spans = [json.loads(line) for line in out.read_text().splitlines()]
    assert [name for name, _ in spans] == ["chat gpt-4o-mini"] * 3
    assert all(cost == pytest.approx(EXPECTED_COST, abs=1e-12) for _, cost in spans)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_does_not_record_its_parents_calls_again(fake_provider: Any) -> None:
    with instrumented(OpenAIInstrumentor(), "batch", **fake_provider_settings(fake_provider)) as telemetry:
        sdk = client(fake_provider)
        _warm_up(sdk)
        telemetry.spans()
        telemetry.spans_exporter.clear()
        sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers())
        assert _pending_endings() == 1
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: what it exports and counts is its own calls only
            try:
                genai_meter.flush()
                found = (len(telemetry.spans()), telemetry.total(names.REQUESTS.otel_name))
                os.write(write_end, repr(found).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end) as pipe:
            child = pipe.read()
        os.waitpid(pid, 0)
        assert child == "(0, 1)"  # (the warm-up call, recorded before the fork)
        assert len(telemetry.spans()) == 1
        assert telemetry.total(names.REQUESTS.otel_name) == 2


@pytest.mark.parametrize("flush", ["force_flush", "shutdown"])
def test_the_apps_own_batch_processor_flushed_directly_records_deferred_calls(fake_provider: Any, flush: str) -> None:
    """Serverless functions and batch jobs flush the processor they made, not the provider."""
    with instrumented(OpenAIInstrumentor(), "batch", **fake_provider_settings(fake_provider)) as telemetry:
        [processor] = telemetry.tracer_provider._active_span_processor._span_processors
        sdk = client(fake_provider)
        for _ in range(2):
            sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers())
        getattr(processor, flush)()
        spans = telemetry.spans_exporter.get_finished_spans()
        assert len(spans) == 2
        assert all((span.attributes or {})[names.COST_USD] == pytest.approx(EXPECTED_COST, abs=1e-12) for span in spans)


def test_an_estimate_measures_the_prompt_as_it_was_when_the_stream_ended(fake_provider: Any) -> None:
    """A chat loop appends to its messages as soon as a stream ends; a stream cut short before its
    usage is estimated from the prompt as sent (4,000 characters: 1,000 tokens)."""
    with instrumented(OpenAIInstrumentor(), "batch", **fake_provider_settings(fake_provider)) as telemetry:
        sdk = client(fake_provider)
        _warm_up(sdk)
        telemetry.spans()
        telemetry.spans_exporter.clear()
        messages: Any = [{"role": "user", "content": "x" * 4000}]
        stream = sdk.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True,
                                             extra_headers={**usage_headers(), "x-fake-chunks": "5"})
        for _chunk in stream:
            break
        stream.close()
        messages.append({"role": "assistant", "content": "y" * 40000})
        [span] = telemetry.spans()
        attrs = dict(span.attributes or {})
        assert attrs[names.USAGE_ESTIMATED] is True
        assert attrs[names.USAGE_INPUT_TOKENS] == 1000


def test_a_response_usage_changed_by_the_app_after_the_call_is_not_what_is_metered(fake_provider: Any) -> None:
    """An agent loop sums its turns' usage into the first response's usage object."""
    with instrumented(OpenAIInstrumentor(), "batch", **fake_provider_settings(fake_provider)) as telemetry:
        sdk = client(fake_provider)
        _warm_up(sdk)
        telemetry.spans()
        telemetry.spans_exporter.clear()
        completion = sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers())
        assert completion.usage is not None
        completion.usage.prompt_tokens += 2000
        [span] = telemetry.spans()
        attrs = dict(span.attributes or {})
        assert attrs[names.USAGE_INPUT_TOKENS] == 1000
        assert attrs[names.COST_USD] == pytest.approx(EXPECTED_COST, abs=1e-12)


def test_calls_ended_before_configure_keep_the_label_settings_they_ended_under(fake_provider: Any) -> None:
    settings = fake_provider_settings(fake_provider, user_labels=False)
    with instrumented(OpenAIInstrumentor(), "batch", **settings) as telemetry:
        _warm_up(client(fake_provider))
        with genai_meter.attribute(user="alice"):
            client(fake_provider).chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers()
            )
        genai_meter.configure(**fake_provider_settings(fake_provider, user_labels=True))
        users = {attrs.get("user") for attrs, _ in telemetry.points(names.COST.otel_name)}
        assert "alice" not in users


def test_a_drain_thread_that_cannot_start_leaves_each_call_recorded_once(
    fake_provider: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from genai_meter import _metrics

    def refused(queue: Any) -> Any:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(_metrics, "_drained_in_background", refused)
    with instrumented(OpenAIInstrumentor(), "batch", **fake_provider_settings(fake_provider)) as telemetry:
        sdk = client(fake_provider)
        sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers())
        list(sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True,
                                         extra_headers=usage_headers()))
        spans = telemetry.spans()
        assert len(spans) == 2
        assert all((span.attributes or {})[names.COST_USD] == pytest.approx(EXPECTED_COST, abs=1e-12) for span in spans)
        assert telemetry.total(names.REQUESTS.otel_name) == 2
