"""genai-meter together with the official OTel OpenAI instrumentation and OpenLLMetry's: one call is
counted once in genai-meter's metrics, its span is not priced again, and the peers' spans get cost."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from openai.resources.chat.completions.completions import Completions

from genai_meter import names
from genai_meter._runtime import configure
from genai_meter.fake_provider import FakeProvider

from .conftest import Exported, attrs

MESSAGES: Any = [{"role": "user", "content": "hello there"}]
USAGE = {"prompt_tokens": 1000, "completion_tokens": 500, "prompt_tokens_details": {"cached_tokens": 200}}
FULL_COST = (800 * 0.15 + 200 * 0.075 + 500 * 0.6) / 1e6  # gpt-4o-mini: 0.15 / 0.075 cached / 0.60
NO_CACHE_COST = (1000 * 0.15 + 500 * 0.6) / 1e6  # the official instrumentation reports no cached tokens


@pytest.mark.parametrize("genai_meter_first", [True, False])
def test_one_call_counted_once(exported: Exported, fake_provider: FakeProvider, genai_meter_first: bool) -> None:
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor as LLMetryOpenAI
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as OfficialOpenAI

    from genai_meter.instrumentation.openai import OpenAIInstrumentor

    original = Completions.__dict__["create"]
    ours, official, llmetry = OpenAIInstrumentor(), OfficialOpenAI(), LLMetryOpenAI()
    order = [ours, official, llmetry] if genai_meter_first else [official, llmetry, ours]
    for instrumentor in order:
        instrumentor.instrument(tracer_provider=exported.tracer_provider, meter_provider=exported.meter_provider)
    configure(ledger_url="off", provider_hosts={"127.0.0.1": "openai"})
    try:
        openai.OpenAI(base_url=fake_provider.openai_base_url, api_key="sk", max_retries=0).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-fake-usage": json.dumps(USAGE)})
    finally:
        for instrumentor in reversed(order):  # wrappers come off in the reverse order they went on
            instrumentor.uninstrument()
        # The peers' own `uninstrument()` leaves wrappers behind (OpenLLMetry's misses chat `create`, and
        # OTel's `unwrap` then strips the layer outside the official one): put the SDK back for the
        # tests that follow. genai-meter takes off only its own layer.
        Completions.create = original  # type: ignore[method-assign]
    assert exported.total(names.REQUESTS.otel_name) == 1
    assert exported.total(names.COST.otel_name) == pytest.approx(FULL_COST, abs=1e-12)
    (own,) = exported.by_scope("genai_meter")
    assert attrs(own)[names.COST_USD] == pytest.approx(FULL_COST, abs=1e-12)
    (official_span,) = exported.by_scope("opentelemetry.instrumentation.openai_v2")
    (llmetry_span,) = exported.by_scope("opentelemetry.instrumentation.openai.v1")
    assert attrs(official_span)[names.COST_USD] == pytest.approx(NO_CACHE_COST, abs=1e-12)
    assert attrs(llmetry_span)[names.COST_USD] == pytest.approx(FULL_COST, abs=1e-12)
    assert names.OUTCOME not in attrs(official_span)  # how to tell genai-meter's spans from priced peers'


def test_openai_raw_response_cached_while_instrumented_passes_through_after(fake_provider: FakeProvider) -> None:
    """The SDK caches the bound method `with_raw_response` / `with_streaming_response` wrap, per client:
    after `uninstrument()` that copy of genai-meter's wrapper passes straight through."""
    from genai_meter.instrumentation.openai import OpenAIInstrumentor

    from ..conftest import fake_provider_settings, instrumented

    client = openai.OpenAI(base_url=fake_provider.openai_base_url, api_key="sk", max_retries=0)
    headers = {"x-fake-usage": json.dumps(USAGE)}

    def raw_and_streaming() -> None:
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=MESSAGES, extra_headers=headers)
        assert raw.parse().usage is not None
        with client.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini", messages=MESSAGES, extra_headers=headers
        ) as response:
            response.parse()

    instrumentor = OpenAIInstrumentor()
    with instrumented(instrumentor, **fake_provider_settings(fake_provider)) as telemetry:
        raw_and_streaming()
        assert len(telemetry.spans()) == 2
        instrumentor.uninstrument()
        raw_and_streaming()
        assert len(telemetry.spans()) == 2
        # instrumented again: the same layer goes back on, so the cached copies meter again, once each
        instrumentor.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
        raw_and_streaming()
        assert len(telemetry.spans()) == 4
