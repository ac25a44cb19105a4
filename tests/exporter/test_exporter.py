"""`CostSpanExporter` on spans made by hand, by peer instrumentations, and by the anthropic SDK itself."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from genai_meter import names
from genai_meter.exporter import CostSpanExporter, load_delegate, span_usage
from genai_meter.fake_provider import FakeProvider
from genai_meter.pricing import PriceBook

from .conftest import Exported, attrs

MESSAGES: Any = [{"role": "user", "content": "hello there"}]
# claude-haiku-4-5 (USD per million tokens): input 1, cache read 0.1, write 1.25 (5 m) / 2 (1 h), output 5.
HAIKU_USAGE = {
    "input_tokens": 1000,
    "cache_read_input_tokens": 2000,
    "cache_creation_input_tokens": 1500,
    "cache_creation": {"ephemeral_5m_input_tokens": 500, "ephemeral_1h_input_tokens": 1000},
    "output_tokens": 400,
}
HAIKU_COST = (1000 * 1 + 2000 * 0.1 + 500 * 1.25 + 1000 * 2 + 400 * 5) / 1e6
HAIKU_COST_5M_ONLY = (1000 * 1 + 2000 * 0.1 + 1500 * 1.25 + 400 * 5) / 1e6


def test_semconv_span_is_priced(exported: Exported) -> None:
    tracer = exported.tracer_provider.get_tracer("peer")
    with tracer.start_as_current_span("chat gpt-4o-mini") as span:
        span.set_attributes({
            names.PROVIDER_NAME: "openai", names.REQUEST_MODEL: "gpt-4o-mini",
            names.USAGE_INPUT_TOKENS: 1000, names.USAGE_OUTPUT_TOKENS: 500,
            names.USAGE_CACHE_READ_INPUT_TOKENS: 200, "custom.keep": "me",
        })
        span.add_event("something")
    (out,) = exported.spans()
    got = attrs(out)
    assert got[names.COST_USD] == pytest.approx((800 * 0.15 + 200 * 0.075 + 500 * 0.6) / 1e6, abs=1e-12)
    assert got[names.COST_SOURCE] == names.COST_SOURCE_PRICING
    assert got[names.PRICED_MODEL] == "gpt-4o-mini"
    assert got[names.PRICING_VERSION].startswith("bundled-")
    assert got["custom.keep"] == "me"
    assert [event.name for event in out.events] == ["something"]
    assert out.context == span.get_span_context()
    # (deprecated, still read by some encoders: once None on a priced copy, which lost their batch)
    assert out._instrumentation_info is not None and out._instrumentation_info.name == "peer"


def test_legacy_names_are_read(exported: Exported) -> None:
    tracer = exported.tracer_provider.get_tracer("old-peer")
    with tracer.start_as_current_span("anthropic.chat") as span:
        span.set_attributes({
            names.LEGACY_SYSTEM: "Anthropic", names.REQUEST_MODEL: "claude-haiku-4-5",
            names.LEGACY_USAGE_PROMPT_TOKENS: 1000, names.LEGACY_USAGE_COMPLETION_TOKENS: 400,
            "gen_ai.usage.cache_read_input_tokens": 2000, "gen_ai.usage.cache_creation_input_tokens": 1500,
        })
    got = attrs(exported.only_span())
    # The cache counts exceed the prompt count: Anthropic's exclusive meaning, added back.
    assert got[names.COST_USD] == pytest.approx(HAIKU_COST_5M_ONLY, abs=1e-12)


def test_other_spans_pass_through_as_the_same_objects() -> None:
    memory = InMemorySpanExporter()
    exporter = CostSpanExporter(memory, prices=PriceBook.load(), emit_semconv_cost=False)
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("x")
    with tracer.start_as_current_span("GET /"):
        pass
    with tracer.start_as_current_span("ours") as ours:
        ours.set_attributes({names.PROVIDER_NAME: "openai", names.REQUEST_MODEL: "gpt-4o-mini",
                             names.USAGE_INPUT_TOKENS: 1, names.COST_USD: 0.5})
    plain, own = memory.get_finished_spans()
    assert names.COST_USD not in attrs(plain)
    assert attrs(own)[names.COST_USD] == 0.5  # genai-meter's own span: never priced again


def test_unpriced_model_is_flagged(exported: Exported) -> None:
    tracer = exported.tracer_provider.get_tracer("peer")
    with tracer.start_as_current_span("chat") as span:
        span.set_attributes({names.PROVIDER_NAME: "openai", names.REQUEST_MODEL: "mystery-model",
                             names.USAGE_INPUT_TOKENS: 10, names.USAGE_OUTPUT_TOKENS: 5})
    got = attrs(exported.only_span())
    assert got[names.UNPRICED] is True and names.COST_USD not in got


def test_semconv_cost_attributes_on_request() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(CostSpanExporter(memory, emit_semconv_cost=True)))
    with provider.get_tracer("peer").start_as_current_span("gemini") as span:
        span.set_attributes({names.PROVIDER_NAME: "gcp.gemini", names.REQUEST_MODEL: "gemini-2.5-flash",
                             names.USAGE_INPUT_TOKENS: 1000, names.USAGE_OUTPUT_TOKENS: 100})
    (out,) = memory.get_finished_spans()
    cost = (1000 * 0.3 + 100 * 2.5) / 1e6
    assert attrs(out)[names.COST_USD] == pytest.approx(cost, abs=1e-12)
    assert attrs(out)[names.SEMCONV_COST_AMOUNT] == pytest.approx(cost, abs=1e-12)
    assert attrs(out)[names.SEMCONV_COST_CURRENCY] == "USD"
    # Exporting a priced span again changes nothing.
    assert CostSpanExporter(memory, emit_semconv_cost=True).export([out]) == SpanExportResult.SUCCESS
    assert memory.get_finished_spans()[-1] is out


def test_span_usage_needs_provider_model_and_tokens() -> None:
    assert span_usage({names.REQUEST_MODEL: "gpt-4o", names.USAGE_INPUT_TOKENS: 3}) is None
    assert span_usage({names.PROVIDER_NAME: "openai", names.USAGE_INPUT_TOKENS: 3}) is None
    assert span_usage({names.PROVIDER_NAME: "openai", names.REQUEST_MODEL: "gpt-4o"}) is None
    found = span_usage({names.PROVIDER_NAME: "OpenAI", names.REQUEST_MODEL: "gpt-4o",
                        names.RESPONSE_MODEL: "gpt-4o-2024-08-06", names.USAGE_OUTPUT_TOKENS: 7})
    assert found is not None and (found.provider, found.model, found.usage.output_tokens) == (
        "openai", "gpt-4o-2024-08-06", 7)


def test_peer_instrumentations_get_cost(exported: Exported, fake_provider: FakeProvider) -> None:
    from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor as LLMetryAnthropic
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as OfficialOpenAI

    official, llmetry = OfficialOpenAI(), LLMetryAnthropic()
    official.instrument(tracer_provider=exported.tracer_provider)
    llmetry.instrument(tracer_provider=exported.tracer_provider)
    try:
        openai.OpenAI(base_url=fake_provider.openai_base_url, api_key="sk", max_retries=0).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES,
            extra_headers={"x-fake-usage": json.dumps({"prompt_tokens": 1000, "completion_tokens": 500})})
        anthropic.Anthropic(base_url=fake_provider.anthropic_base_url, api_key="sk", max_retries=0).messages.create(
            model="claude-haiku-4-5", max_tokens=10, messages=MESSAGES,
            extra_headers={"x-fake-usage": json.dumps(HAIKU_USAGE)})
    finally:
        llmetry.uninstrument()
        official.uninstrument()
    (official_span,) = exported.by_scope("opentelemetry.instrumentation.openai_v2")
    assert attrs(official_span)[names.COST_USD] == pytest.approx((1000 * 0.15 + 500 * 0.6) / 1e6, abs=1e-12)
    (llmetry_span,) = exported.by_scope("opentelemetry.instrumentation.anthropic")
    # OpenLLMetry reports no 1-hour breakdown: its writes are priced at the 5-minute rate.
    assert attrs(llmetry_span)[names.COST_USD] == pytest.approx(HAIKU_COST_5M_ONLY, abs=1e-12)


def test_anthropic_sdk_self_tracing_is_priced_without_genai_meter(exported: Exported,
                                                                   fake_provider: FakeProvider) -> None:
    client = anthropic.Anthropic(base_url=fake_provider.anthropic_base_url, api_key="sk", max_retries=0,
                                 open_telemetry={"tracer_provider": exported.tracer_provider})
    client.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=MESSAGES,
                           extra_headers={"x-fake-usage": json.dumps(HAIKU_USAGE)})
    got = attrs(exported.only_span())
    assert got[names.USAGE_INPUT_TOKENS] == 4500
    assert got[names.COST_USD] == pytest.approx(HAIKU_COST, abs=1e-12)  # its 1-hour breakdown is used


# gpt-5-mini (USD per million tokens): standard 0.25 / 2, flex 0.125 / 1, priority 0.45 / 3.6.
@pytest.mark.parametrize(
    ("key", "tier", "cost"),
    [
        ("openai.response.service_tier", "flex", (1000 * 0.125 + 1000 * 1) / 1e6),
        ("gen_ai.openai.response.service_tier", "flex", (1000 * 0.125 + 1000 * 1) / 1e6),
        ("openai.response.service_tier", "priority", (1000 * 0.45 + 1000 * 3.6) / 1e6),
        ("gen_ai.openai.response.service_tier", "default", (1000 * 0.25 + 1000 * 2) / 1e6),
        ("openai.response.service_tier", "no-such-tier", (1000 * 0.25 + 1000 * 2) / 1e6),
    ],
)
def test_service_tier_of_the_response_is_priced(exported: Exported, key: str, tier: str, cost: float) -> None:
    with exported.tracer_provider.get_tracer("peer").start_as_current_span("chat gpt-5-mini") as span:
        span.set_attributes({names.PROVIDER_NAME: "openai", names.RESPONSE_MODEL: "gpt-5-mini-2025-08-07",
                             names.USAGE_INPUT_TOKENS: 1000, names.USAGE_OUTPUT_TOKENS: 1000, key: tier})
    assert attrs(exported.only_span())[names.COST_USD] == pytest.approx(cost, abs=1e-12)


def test_service_tier_on_peer_and_sdk_spans(exported: Exported, fake_provider: FakeProvider) -> None:
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as OfficialOpenAI

    official = OfficialOpenAI()
    official.instrument(tracer_provider=exported.tracer_provider)
    try:
        openai.OpenAI(base_url=fake_provider.openai_base_url, api_key="sk", max_retries=0).chat.completions.create(
            model="gpt-5-mini", messages=MESSAGES, service_tier="flex",
            extra_headers={"x-fake-usage": json.dumps({"prompt_tokens": 1000, "completion_tokens": 1000}),
                           "x-fake-fields": json.dumps({"service_tier": "flex"})})
    finally:
        official.uninstrument()
    client = anthropic.Anthropic(base_url=fake_provider.anthropic_base_url, api_key="sk", max_retries=0,
                                 open_telemetry={"tracer_provider": exported.tracer_provider})
    client.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=MESSAGES, extra_headers={
        "x-fake-usage": json.dumps({"input_tokens": 1000, "output_tokens": 1000, "service_tier": "batch"})})
    (official_span,) = exported.by_scope("opentelemetry.instrumentation.openai_v2")
    assert attrs(official_span)[names.COST_USD] == pytest.approx((1000 * 0.125 + 1000 * 1) / 1e6, abs=1e-12)
    (sdk_span,) = exported.by_scope("com.anthropic.sdk.python")
    assert attrs(sdk_span)["anthropic.response.service_tier"] == "batch"
    # claude-haiku-4-5: 1 / 5 standard, half in batch.
    assert attrs(sdk_span)[names.COST_USD] == pytest.approx((1000 * 0.5 + 1000 * 2.5) / 1e6, abs=1e-12)


def test_anthropic_sdk_span_with_compactions(exported: Exported, fake_provider: FakeProvider) -> None:
    client = anthropic.Anthropic(base_url=fake_provider.anthropic_base_url, api_key="sk", max_retries=0,
                                 open_telemetry={"tracer_provider": exported.tracer_provider})
    usage = {"input_tokens": 2000, "output_tokens": 500, "cache_read_input_tokens": 1000, "iterations": [
        {"type": "compaction", "input_tokens": 150000, "output_tokens": 4000, "cache_read_input_tokens": 10000,
         "cache_creation_input_tokens": 0},
        {"type": "message", "input_tokens": 2000, "output_tokens": 500, "cache_read_input_tokens": 1000,
         "cache_creation_input_tokens": 0},
    ]}
    client.beta.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=MESSAGES,
                                extra_headers={"x-fake-usage": json.dumps(usage)})
    got = attrs(exported.only_span())
    assert (got["anthropic.usage.compaction.input_tokens"], got["anthropic.usage.compaction.output_tokens"]) == (
        160000, 4000)
    # claude-haiku-4-5: input 1, cache read 0.1, output 5; the compactions' input has no cache breakdown.
    cost = (2000 * 1 + 1000 * 0.1 + 160000 * 1 + (500 + 4000) * 5) / 1e6
    assert got[names.COST_USD] == pytest.approx(cost, abs=1e-12)


def test_compaction_attributes_on_a_hand_made_span(exported: Exported) -> None:
    with exported.tracer_provider.get_tracer("com.anthropic.sdk.python").start_as_current_span("chat") as span:
        span.set_attributes({names.PROVIDER_NAME: "anthropic", names.REQUEST_MODEL: "claude-sonnet-4-5",
                             names.USAGE_INPUT_TOKENS: 2000, names.USAGE_OUTPUT_TOKENS: 500,
                             "anthropic.usage.compaction.input_tokens": 160000,
                             "anthropic.usage.compaction.output_tokens": 4000})
    assert attrs(exported.only_span())[names.COST_USD] == pytest.approx(
        (162000 * 3 + 4500 * 15) / 1e6, abs=1e-12)


def test_compaction_on_a_span_is_priced_as_a_request_of_its_own(exported: Exported) -> None:
    """60,000 input tokens and a 160,000-token compaction: both under the 200,000-token tier."""
    with exported.tracer_provider.get_tracer("com.anthropic.sdk.python").start_as_current_span("chat") as span:
        span.set_attributes({names.PROVIDER_NAME: "anthropic", names.REQUEST_MODEL: "claude-sonnet-4-5",
                             names.USAGE_INPUT_TOKENS: 60000, names.USAGE_OUTPUT_TOKENS: 1000,
                             "anthropic.usage.compaction.input_tokens": 160000,
                             "anthropic.usage.compaction.output_tokens": 4000})
    assert attrs(exported.only_span())[names.COST_USD] == pytest.approx(
        (220000 * 3 + 5000 * 15) / 1e6, abs=1e-12)


def test_anthropic_sdk_span_inside_a_metered_call_is_not_priced_again(exported: Exported,
                                                                        fake_provider: FakeProvider) -> None:
    from genai_meter.instrumentation.anthropic import AnthropicInstrumentor

    instrumentor = AnthropicInstrumentor()
    instrumentor.instrument(tracer_provider=exported.tracer_provider, meter_provider=exported.meter_provider)
    try:
        client = anthropic.Anthropic(base_url=fake_provider.anthropic_base_url, api_key="sk", max_retries=0,
                                     open_telemetry={"tracer_provider": exported.tracer_provider})
        client.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=MESSAGES,
                               extra_headers={"x-fake-usage": json.dumps(HAIKU_USAGE)})
        with client.messages.stream(model="claude-haiku-4-5", max_tokens=10, messages=MESSAGES,
                                    extra_headers={"x-fake-usage": json.dumps(HAIKU_USAGE)}) as stream:
            stream.get_final_message()
    finally:
        instrumentor.uninstrument()
    ours = exported.by_scope("genai_meter")
    sdk = exported.by_scope("com.anthropic.sdk.python")
    assert len(ours) == 2 and len(sdk) == 2
    assert {s.parent.span_id for s in sdk if s.parent} == {s.context.span_id for s in ours}
    for span in sdk:
        assert attrs(span)[names.USAGE_INPUT_TOKENS] == 4500  # the SDK's own record, left as it was
        assert names.COST_USD not in attrs(span) and names.UNPRICED not in attrs(span)
    for span in ours:
        assert attrs(span)[names.COST_USD] == pytest.approx(HAIKU_COST, abs=1e-12)
    assert exported.total(names.REQUESTS.otel_name) == 2
    assert exported.total(names.COST.otel_name) == pytest.approx(2 * HAIKU_COST, abs=1e-12)


def test_delegate_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    assert isinstance(load_delegate("console"), ConsoleSpanExporter)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_PROTOCOL", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", raising=False)
    assert isinstance(load_delegate("otlp"), GrpcExporter)  # as OTEL_TRACES_EXPORTER=otlp
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")
    assert isinstance(load_delegate("otlp"), HttpExporter)
    assert isinstance(load_delegate("otlp_proto_grpc"), GrpcExporter)
    with pytest.raises(ValueError, match="cannot wrap itself"):
        load_delegate("genai_meter")
    with pytest.raises(ValueError, match=r"no span exporter named 'nope'.*console"):
        load_delegate("nope")
    monkeypatch.setenv("GENAI_METER_EXPORTER_DELEGATE", "console")
    exporter = CostSpanExporter()
    assert isinstance(exporter.delegate, ConsoleSpanExporter)
    exporter.shutdown()


def test_registered_as_a_traces_exporter() -> None:
    from opentelemetry.util._importlib_metadata import entry_points

    (found,) = entry_points(group="opentelemetry_traces_exporter", name="genai_meter")
    assert found.load() is CostSpanExporter


def test_under_the_launcher(tmp_path: Any) -> None:
    """OTEL_TRACES_EXPORTER=genai_meter: the OTel SDK's configurator builds the exporter, which prices."""
    import os
    import subprocess
    import sys

    script = tmp_path / "app.py"
    script.write_text(
        "from opentelemetry import trace\n"
        "with trace.get_tracer('peer').start_as_current_span('chat') as span:\n"
        "    span.set_attributes({'gen_ai.provider.name': 'openai', 'gen_ai.request.model': 'gpt-4o-mini',\n"
        "                         'gen_ai.usage.input_tokens': 1000, 'gen_ai.usage.output_tokens': 500})\n"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "GENAI_METER_"))}
    env.update({
        "OTEL_TRACES_EXPORTER": "genai_meter", "GENAI_METER_EXPORTER_DELEGATE": "console",
        "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none", "GENAI_METER_LEDGER_URL": "off",
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai_v2,openai,anthropic",
    })
    launcher = os.path.join(os.path.dirname(sys.executable), "opentelemetry-instrument")
    done = subprocess.run([launcher, sys.executable, str(script)], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    exported = json.loads(done.stdout)
    assert exported["attributes"][names.COST_USD] == pytest.approx((1000 * 0.15 + 500 * 0.6) / 1e6, abs=1e-12)


def test_the_apps_configure_prices_peer_spans(exported: Exported, tmp_path: Any) -> None:
    """`genai_meter.configure(pricing_file=..., emit_semconv_cost=True)` in the app: peer spans are
    priced as genai-meter's own are (the exporter once read only the file and the environment, so
    the same call's peer spans were unpriced)."""
    from genai_meter._runtime import configure

    prices = tmp_path / "prices.yaml"
    prices.write_text("models:\n  house-model: {provider: openai, input: 2, output: 4}\n", encoding="utf-8")
    configure(ledger_url="off", pricing_file=str(prices), emit_semconv_cost=True)
    with exported.tracer_provider.get_tracer("peer").start_as_current_span("chat house-model") as span:
        span.set_attributes({names.PROVIDER_NAME: "openai", names.REQUEST_MODEL: "house-model",
                             names.USAGE_INPUT_TOKENS: 1000, names.USAGE_OUTPUT_TOKENS: 500})
    got = attrs(exported.only_span())
    assert got[names.COST_USD] == pytest.approx((1000 * 2 + 500 * 4) / 1e6, abs=1e-12)
    assert got[names.SEMCONV_COST_AMOUNT] == pytest.approx(0.004, abs=1e-12)


@pytest.mark.parametrize(
    "server",
    [{"server.address": "api.groq.com", "server.port": 443}, {"gen_ai.openai.api_base": "https://api.groq.com/openai/v1"}],
)
def test_a_compatible_providers_peer_span_is_priced_as_that_provider(
    exported: Exported, server: dict[str, Any]
) -> None:
    """Peers name every OpenAI-SDK client's server `openai`; the span's host says Groq (once priced
    at OpenAI's price, or flagged unpriced). llama-3.3-70b-versatile on Groq: $0.59 / $0.79."""
    with exported.tracer_provider.get_tracer("peer").start_as_current_span("chat") as span:
        span.set_attributes({names.LEGACY_SYSTEM: "openai", names.REQUEST_MODEL: "llama-3.3-70b-versatile",
                             names.USAGE_INPUT_TOKENS: 100_000, names.USAGE_OUTPUT_TOKENS: 50_000, **server})
    got = attrs(exported.only_span())
    assert got[names.COST_USD] == pytest.approx((100_000 * 0.59 + 50_000 * 0.79) / 1e6, abs=1e-12)


def _limited_span(own: int) -> Any:
    """A finished peer span with `own` attributes of its own made before its 4 GenAI ones, from a
    provider whose spans hold at most 128 attributes (the default limit)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(span_limits=SpanLimits(max_span_attributes=128))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("peer").start_as_current_span("chat gpt-4o-mini") as span:
        span.set_attributes({f"peer.{index:03d}": index for index in range(own)})
        span.set_attributes({
            names.PROVIDER_NAME: "openai", names.REQUEST_MODEL: "gpt-4o-mini",
            names.USAGE_INPUT_TOKENS: 1000, names.USAGE_OUTPUT_TOKENS: 500,
        })
    (finished,) = memory.get_finished_spans()
    return finished


def _priced(span: Any) -> Any:
    memory = InMemorySpanExporter()
    CostSpanExporter(memory).export([span])
    (out,) = memory.get_finished_spans()
    return out


def test_a_priced_span_stays_within_the_attribute_count_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cost attributes are all kept; past the span's limit (128 here) the oldest of the span's
    own attributes go, as the SDK drops them on a live span, and the copy counts them as dropped."""
    from genai_meter.exporter import _exporter

    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "128")
    _exporter._environment_limits.cache_clear()
    try:
        roomy = _priced(_limited_span(10))
        added = len(attrs(roomy)) - 14
        assert added == 6 and roomy.dropped_attributes == 0  # cost, its input and output parts, source, version, model
        assert attrs(roomy)[names.COST_USD] == pytest.approx((1000 * 0.15 + 500 * 0.6) / 1e6, abs=1e-12)

        full = _priced(_limited_span(120))  # 124 of its own: `added - 4` too many
        got = attrs(full)
        assert len(got) == 128 and full.dropped_attributes == added - 4
        assert [key for key in got if key.startswith("peer.")] == [f"peer.{i:03d}" for i in range(added - 4, 120)]
        assert {key: got[key] for key in attrs(roomy) if not key.startswith("peer.")} == {
            key: value for key, value in attrs(roomy).items() if not key.startswith("peer.")
        }
    finally:
        _exporter._environment_limits.cache_clear()
