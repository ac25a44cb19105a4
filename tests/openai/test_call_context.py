"""The app's OTel context at a call's start: used for the span's start and its activation, then let go
of, and what a custom sampler or span processor is handed is unchanged (None: the current context)."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import openai
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

from genai_meter._call import begin_call
from genai_meter._runtime import configure, get_runtime, reset_runtime
from genai_meter.fake_provider import FakeProvider

from ..conftest import Telemetry


def test_a_call_held_open_does_not_keep_the_apps_parent_span(telemetry: Telemetry, fake_provider: FakeProvider) -> None:
    """A background response is held (polled) after the call returns: its Call must not keep the
    app's context, and with it the parent span and all it holds, alive."""
    client = openai.OpenAI(base_url=fake_provider.openai_base_url, api_key="sk-test", max_retries=0)
    tracer = telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("GET /report") as parent:
        response = client.responses.create(
            model="gpt-4o-mini", input="hi", background=True, extra_headers={"x-fake-background-polls": "3"}
        )
    assert response.status == "queued"  # (the call is still held, waiting for the response's end)
    parent_ref = weakref.ref(parent)
    del parent
    gc.collect()
    assert parent_ref() is None


def test_a_custom_sampler_and_processor_get_the_parent_context_as_before() -> None:
    seen: dict[str, Any] = {}

    class Recording(Sampler):
        def should_sample(self, parent_context: Any, *args: Any, **kwargs: Any) -> SamplingResult:
            seen["sampler"] = parent_context
            return SamplingResult(Decision.RECORD_AND_SAMPLE)

        def get_description(self) -> str:
            return "recording"

    class Starting(SpanProcessor):
        def on_start(self, span: Any, parent_context: Any = None) -> None:
            seen["processor"] = parent_context

    provider = TracerProvider(sampler=Recording())
    provider.add_span_processor(Starting())
    configure(ledger_url="off")
    try:
        runtime = get_runtime()
        runtime.tracer = provider.get_tracer("genai_meter")
        call = begin_call(runtime, "openai", "chat", "gpt-4o-mini", "api.openai.com", False, None)
        call.finish(usage=None)
    finally:
        reset_runtime()
    assert seen == {"sampler": None, "processor": None}
