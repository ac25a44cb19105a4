"""Anthropic instrumented into in-memory span and metric pipelines, and real SDK clients aimed at the
project's fake provider (the folder overrides the OpenAI-only `telemetry` fixture of tests/)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import pytest

from genai_meter.fake_provider import FakeProvider

from ..conftest import Telemetry, instrumented


@pytest.fixture(params=["simple", "batch"])
def telemetry(fake_provider: FakeProvider, request: pytest.FixtureRequest) -> Iterator[Telemetry]:
    """Behind the SDK's simple span processor and its batch one (calls end at a later drain)."""
    from genai_meter.instrumentation.anthropic import AnthropicInstrumentor

    with instrumented(AnthropicInstrumentor(), request.param, ledger_url="off") as telemetry:
        yield telemetry


def claude_client(fake_provider: FakeProvider, **options: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=fake_provider.anthropic_base_url, api_key="sk-ant-test", max_retries=0, **options
    )


@pytest.fixture
def claude(fake_provider: FakeProvider) -> Iterator[anthropic.Anthropic]:
    with claude_client(fake_provider) as client:
        yield client


@pytest.fixture
async def aclaude(fake_provider: FakeProvider) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=fake_provider.anthropic_base_url, api_key="sk-ant-test", max_retries=0)
    async with client:
        yield client
