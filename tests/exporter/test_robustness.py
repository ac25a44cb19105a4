"""`CostSpanExporter` on odd spans and odd configuration: one bad span never costs its batch its
prices, an unreadable count is flagged instead of quietly dropped, and a delegate that cannot be
built never stops the launcher."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from genai_meter import names
from genai_meter._faults import fault_counts, reset_faults
from genai_meter.exporter import CostSpanExporter, _exporter
from genai_meter.pricing import ModelPricing, PriceBook

BASE = {names.PROVIDER_NAME: "openai", names.REQUEST_MODEL: "gpt-4o-mini"}
FULL = {**BASE, names.USAGE_INPUT_TOKENS: 1000, names.USAGE_OUTPUT_TOKENS: 500}
FULL_COST = (1000 * 0.15 + 500 * 0.6) / 1e6
OUTPUT_ONLY_COST = 500 * 0.6 / 1e6


@pytest.fixture(autouse=True)
def _faults() -> None:
    reset_faults()


def finished(*attribute_sets: dict[str, Any]) -> list[ReadableSpan]:
    tracer = TracerProvider().get_tracer("peer")
    spans: list[ReadableSpan] = []
    for index, attributes in enumerate(attribute_sets):
        span = tracer.start_span(f"span{index}", attributes=attributes)
        span.end()
        spans.append(cast(ReadableSpan, span))  # the SDK's spans are ReadableSpans
    return spans


def export(*attribute_sets: dict[str, Any], prices: PriceBook | None = None) -> list[dict[str, Any]]:
    memory = InMemorySpanExporter()
    exporter = CostSpanExporter(memory, prices=prices or PriceBook.load(), emit_semconv_cost=False)
    assert exporter.export(finished(*attribute_sets)) == SpanExportResult.SUCCESS
    return [dict(span.attributes or {}) for span in memory.get_finished_spans()]


@pytest.mark.parametrize("bad", [float("inf"), float("nan"), -5, 10**13, True, "1000", (1000,)], ids=repr)
def test_unreadable_input_count_is_priced_on_output_and_flagged(bad: Any) -> None:
    good, odd = export(FULL, {**FULL, names.USAGE_INPUT_TOKENS: bad})
    assert good[names.COST_USD] == pytest.approx(FULL_COST, abs=1e-12)
    assert names.USAGE_SUSPECT not in good
    assert odd[names.COST_USD] == pytest.approx(OUTPUT_ONLY_COST, abs=1e-12)
    assert odd[names.USAGE_SUSPECT] is True


def test_float_counts_are_read() -> None:
    (got,) = export({**BASE, names.USAGE_INPUT_TOKENS: 1000.0, names.USAGE_OUTPUT_TOKENS: 500.0})
    assert got[names.COST_USD] == pytest.approx(FULL_COST, abs=1e-12)
    assert names.USAGE_SUSPECT not in got


def test_a_later_readable_name_is_used() -> None:
    (got,) = export({**FULL, names.USAGE_INPUT_TOKENS: float("nan"), names.LEGACY_USAGE_PROMPT_TOKENS: 1000})
    assert got[names.COST_USD] == pytest.approx(FULL_COST, abs=1e-12)
    assert got[names.USAGE_SUSPECT] is True  # a broken attribute is still worth a look


class _Breaking:
    """The bundled prices, failing for one model as a malformed overrides file or a bug would."""

    def __init__(self) -> None:
        self.book = PriceBook.load()

    def resolve(self, provider: str, model: str) -> ModelPricing | None:
        if model == "boom":
            raise RuntimeError("cannot price")
        return self.book.resolve(provider, model)


def test_a_span_that_cannot_be_priced_is_flagged_and_the_rest_priced() -> None:
    prices = cast(PriceBook, _Breaking())
    before, broken, after = export(FULL, {**FULL, names.REQUEST_MODEL: "boom"}, FULL, prices=prices)
    assert before[names.COST_USD] == pytest.approx(FULL_COST, abs=1e-12)
    assert after[names.COST_USD] == pytest.approx(FULL_COST, abs=1e-12)
    assert broken[names.UNPRICED] is True and names.COST_USD not in broken
    assert fault_counts().get("exporter.price") == 1


def test_unknown_delegate_falls_back_to_otlp(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

    monkeypatch.setenv("GENAI_METER_EXPORTER_DELEGATE", "bogus")
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_PROTOCOL", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", raising=False)
    with caplog.at_level(logging.WARNING, logger="genai_meter"):
        exporter = CostSpanExporter()
    assert isinstance(exporter.delegate, GrpcExporter)
    assert fault_counts() == {"exporter.delegate": 1}
    (logged,) = [r.getMessage() for r in caplog.records if "exporter.delegate" in r.getMessage()]
    assert "GENAI_METER_EXPORTER_DELEGATE" in logged and "'bogus'" in logged
    exporter.shutdown()


def test_unsupported_otlp_protocol_falls_back_to_otlp_over_http(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    monkeypatch.setenv("GENAI_METER_EXPORTER_DELEGATE", "otlp")
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with caplog.at_level(logging.WARNING, logger="genai_meter"):
        exporter = CostSpanExporter()
    assert isinstance(exporter.delegate, HttpExporter)
    (logged,) = [r.getMessage() for r in caplog.records if "exporter.delegate" in r.getMessage()]
    assert "OTEL_EXPORTER_OTLP_PROTOCOL='http/json'" in logged
    exporter.shutdown()


def test_no_delegate_at_all_drops_spans(monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable(name: str) -> Any:
        raise ValueError(f"no exporter {name!r} here")

    monkeypatch.setattr(_exporter, "load_delegate", unavailable)
    exporter = CostSpanExporter()
    spans: Sequence[ReadableSpan] = finished(FULL)
    assert exporter.export(spans) == SpanExportResult.FAILURE
    assert exporter.force_flush() is True
    exporter.shutdown()
    assert fault_counts() == {"exporter.delegate": 1, "exporter.delegate_fallback": 1}


def test_bad_delegate_under_the_launcher_keeps_the_instrumentations(tmp_path: Any) -> None:
    """The launcher builds the exporter before it loads the instrumentors: an exception there used to
    stop them all."""
    script = tmp_path / "app.py"
    script.write_text(
        "import anthropic.resources.messages.messages as m\n"
        "from genai_meter.instrumentation import _patching\n"
        "print(any(cls is m.Messages for cls, _method in _patching._layers))\n"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "GENAI_METER_"))}
    env.update(
        {
            "OTEL_TRACES_EXPORTER": "genai_meter",
            "GENAI_METER_EXPORTER_DELEGATE": "bogus",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "GENAI_METER_LEDGER_URL": "off",
            "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai_v2,openai,anthropic",
        }
    )
    launcher = os.path.join(os.path.dirname(sys.executable), "opentelemetry-instrument")
    done = subprocess.run(
        [launcher, sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True", done.stderr
    assert "GENAI_METER_EXPORTER_DELEGATE" in done.stderr and "'bogus'" in done.stderr


def test_a_wrong_unrelated_key_keeps_the_exporters_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Built by the launcher, the exporter reads the configuration leniently: one wrong key (here
    the label cap) must not throw away its delegate, pricing file and semconv cost switch."""
    overrides = tmp_path / "prices.yaml"
    overrides.write_text("models:\n  house-model: {provider: openai, input: 2, output: 4}\n")
    config = tmp_path / "genai-meter.yaml"
    config.write_text(f"exporter_delegate: console\npricing_file: {overrides}\nemit_semconv_cost: true\n")
    monkeypatch.delenv("GENAI_METER_EXPORTER_DELEGATE", raising=False)
    monkeypatch.setenv("GENAI_METER_CONFIG", str(config))
    monkeypatch.setenv("GENAI_METER_LABEL_CAP", "abc")
    reset_faults()
    exporter = CostSpanExporter()
    assert isinstance(exporter.delegate, ConsoleSpanExporter)
    memory = InMemorySpanExporter()
    priced = CostSpanExporter(memory)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(priced))
    with provider.get_tracer("peer").start_as_current_span("chat") as span:
        span.set_attributes({names.PROVIDER_NAME: "openai", names.REQUEST_MODEL: "house-model",
                             names.USAGE_INPUT_TOKENS: 1000, names.USAGE_OUTPUT_TOKENS: 500})
    (out,) = memory.get_finished_spans()
    assert (out.attributes or {})[names.COST_USD] == pytest.approx((1000 * 2 + 500 * 4) / 1e6, abs=1e-12)
    assert (out.attributes or {})[names.SEMCONV_COST_CURRENCY] == "USD"
    assert fault_counts().get("exporter.config", 0) >= 1
    exporter.shutdown()
