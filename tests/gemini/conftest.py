"""Google Gen AI instrumented into in-memory span and metric pipelines, and a real `google-genai`
client aimed at the project's fake provider (overrides the OpenAI-only `telemetry` fixture)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google import genai
from google.genai import types

from genai_meter.fake_provider import FakeProvider

from ..conftest import Telemetry, instrumented


@pytest.fixture(params=["simple", "batch"])
def telemetry(fake_provider: FakeProvider, request: pytest.FixtureRequest) -> Iterator[Telemetry]:
    """Behind the SDK's simple span processor and its batch one (calls end at a later drain)."""
    from genai_meter.instrumentation.google_genai import GoogleGenAIInstrumentor

    with instrumented(GoogleGenAIInstrumentor(), request.param, ledger_url="off") as telemetry:
        yield telemetry


@pytest.fixture
def gemini(fake_provider: FakeProvider) -> genai.Client:
    return genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=fake_provider.gemini_base_url))
