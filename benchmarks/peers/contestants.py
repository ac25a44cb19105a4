"""How each contestant is switched on, on the same OTel SDK set-up.

Every contestant gets one TracerProvider (BatchSpanProcessor into a no-op exporter) and one
MeterProvider (InMemoryMetricReader), set as the globals too, so a tool that only looks at the
globals (openlit) lands on the same pipeline as one that takes them as arguments. Prompt and
completion text capture is off for all: genai-meter never records text, and a peer that does pays
for serialising it, which would flatter genai-meter. Each contestant runs in a process of its own:
instrumentors that patch the same SDK methods cannot be cleanly undone together.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from workloads import FEATURE, TENANT, USER

HERE = Path(__file__).resolve().parent
OPENLIT_PRICING = HERE / "openlit_pricing.json"

# name -> (PyPI distributions shown in the report, SDKs it instruments)
CONTESTANTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "bare": ((), ("openai", "anthropic")),
    "genai-meter": (("genai-meter",), ("openai", "anthropic")),
    "genai-meter+budget": (("genai-meter",), ("openai", "anthropic")),
    "otel-openai-v2": (("opentelemetry-instrumentation-openai-v2",), ("openai",)),
    "openllmetry": (
        ("opentelemetry-instrumentation-openai", "opentelemetry-instrumentation-anthropic"),
        ("openai", "anthropic"),
    ),
    "openlit": (("openlit",), ("openai", "anthropic")),
}


_BUDGET = {"name": "tenant-monthly", "scope": "tenant", "period": "month", "limit_usd": 1e9, "mode": "hard"}


class NullExporter(SpanExporter):
    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


@dataclass
class Pipeline:
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    reader: InMemoryMetricReader


def pipeline() -> Pipeline:
    os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "false"
    os.environ["TRACELOOP_TRACE_CONTENT"] = "false"
    # No exporter of any tool's own choosing: everything goes through the providers set here.
    for signal in ("TRACES", "METRICS", "LOGS"):
        os.environ[f"OTEL_{signal}_EXPORTER"] = "none"
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(NullExporter(), max_queue_size=100_000))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    return Pipeline(tracer_provider, meter_provider, reader)


Scope = Callable[[], AbstractContextManager[Any]]


def _no_scope() -> AbstractContextManager[Any]:
    return nullcontext()


def switch_on(name: str, pipe: Pipeline) -> Scope:
    """Instrument the SDKs the contestant's way; returns what wraps each call (attribution)."""
    providers = {"tracer_provider": pipe.tracer_provider, "meter_provider": pipe.meter_provider}
    if name == "bare":
        return _no_scope
    if name in ("genai-meter", "genai-meter+budget"):
        import genai_meter
        from genai_meter.instrumentation.anthropic import AnthropicInstrumentor
        from genai_meter.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(**providers)
        AnthropicInstrumentor().instrument(**providers)
        settings: dict[str, Any] = {"ledger_url": "off", "inject_stream_usage": {"api.openai.com": True}}
        if name == "genai-meter+budget":
            # A hard per-tenant budget in the in-process store: every call is checked, reserved
            # against and settled. The limit is never reached, so no call is refused.
            settings["budgets"] = {"policies": [_BUDGET]}
        genai_meter.configure(**settings)

        def scope() -> AbstractContextManager[Any]:
            return genai_meter.attribute(user=USER, tenant=TENANT, feature=FEATURE)

        return scope
    if name == "otel-openai-v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as V2

        V2().instrument(**providers)
        return _no_scope
    if name == "openllmetry":
        from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor as LLMetryAnthropic
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor as LLMetryOpenAI

        LLMetryOpenAI().instrument(**providers)
        LLMetryAnthropic().instrument(**providers)
        return _no_scope
    if name == "openlit":
        import openlit
        from openlit._instrumentors import MODULE_NAME_MAP

        # openlit takes no providers: it reuses the global SDK ones set in `pipeline()`. Its other
        # instrumentors (httpx, requests, web frameworks...) are off, so it is measured on the same
        # two SDKs as the rest; its price list is a local file (by default it downloads one).
        openlit.init(
            application_name="bench",
            capture_message_content=False,
            disable_events=True,
            disabled_instrumentors=[key for key in MODULE_NAME_MAP if key not in ("openai", "anthropic")],
            pricing_json=str(OPENLIT_PRICING),
        )
        return _no_scope
    raise SystemExit(f"unknown contestant {name!r}; one of {', '.join(CONTESTANTS)}")
