"""Responses API (plain, streamed, `responses.stream` helper) and embeddings, sync and async."""

from __future__ import annotations

import json
from typing import Any

import pytest

from genai_meter import names

from ..conftest import Telemetry
from .test_chat import MINI_CACHED, MINI_IN, MINI_OUT, async_client, client

RESPONSES_USAGE = {
    "input_tokens": 3000,
    "output_tokens": 700,
    "input_tokens_details": {"cached_tokens": 1000},
    "output_tokens_details": {"reasoning_tokens": 300},
}
RESPONSES_COST = 2000 * MINI_IN + 1000 * MINI_CACHED + 700 * MINI_OUT
HEADERS = {"x-fake-usage": json.dumps(RESPONSES_USAGE)}


def assert_responses_span(telemetry: Telemetry, stream: bool) -> None:
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.OPERATION_NAME] == "chat"
    assert attrs[names.REQUEST_STREAM] is stream
    assert attrs[names.USAGE_INPUT_TOKENS] == 3000
    assert attrs[names.USAGE_OUTPUT_TOKENS] == 700
    assert attrs[names.USAGE_CACHE_READ_INPUT_TOKENS] == 1000
    assert attrs[names.USAGE_REASONING_OUTPUT_TOKENS] == 300
    assert attrs[names.COST_USD] == pytest.approx(RESPONSES_COST, abs=1e-9)
    assert str(attrs[names.RESPONSE_ID]).startswith("resp")
    assert attrs[names.RESPONSE_FINISH_REASONS] == ("completed",)  # the status, streamed or not
    assert telemetry.total(names.COST.otel_name) == pytest.approx(RESPONSES_COST, abs=1e-9)


def test_responses_create(telemetry: Telemetry, fake_provider: Any) -> None:
    response = client(fake_provider).responses.create(model="gpt-4o-mini", input="hi", extra_headers=HEADERS)
    assert response.output_text
    assert_responses_span(telemetry, stream=False)


def test_responses_create_stream(telemetry: Telemetry, fake_provider: Any) -> None:
    events = list(
        client(fake_provider).responses.create(
            model="gpt-4o-mini", input="hi", stream=True, extra_headers=HEADERS
        )
    )
    assert events[-1].type == "response.completed"
    assert_responses_span(telemetry, stream=True)


def test_responses_stream_helper(telemetry: Telemetry, fake_provider: Any) -> None:
    with client(fake_provider).responses.stream(
        model="gpt-4o-mini", input="hi", extra_headers=HEADERS
    ) as stream:
        text = "".join(event.delta for event in stream if event.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert text and final.usage is not None
    assert_responses_span(telemetry, stream=True)


async def test_responses_async_stream(telemetry: Telemetry, fake_provider: Any) -> None:
    async with async_client(fake_provider) as aclient:
        stream = await aclient.responses.create(
            model="gpt-4o-mini", input="hi", stream=True, extra_headers=HEADERS
        )
        async for _event in stream:
            pass
    assert_responses_span(telemetry, stream=True)


def test_responses_streaming_response_read_as_lines(telemetry: Telemetry, fake_provider: Any) -> None:
    """The SDK's README reads a raw stream with `iter_lines()`: the SDK's `Stream` is never iterated,
    so the stream is metered from its bytes (it was once ended as a 1-token estimate)."""
    with client(fake_provider).responses.with_streaming_response.create(
        model="gpt-4o-mini", input="hi", stream=True, extra_headers=HEADERS
    ) as response:
        lines = [line for line in response.iter_lines() if line]
    assert any("response.completed" in line for line in lines)
    assert_responses_span(telemetry, stream=True)
    assert (telemetry.only_span().attributes or {}).get(names.USAGE_ESTIMATED) is None


def test_responses_raw_stream_parsed_by_the_app(telemetry: Telemetry, fake_provider: Any) -> None:
    raw = client(fake_provider).responses.with_raw_response.create(
        model="gpt-4o-mini", input="hi", stream=True, extra_headers=HEADERS
    )
    events = list(raw.parse())
    assert events[-1].type == "response.completed"
    assert_responses_span(telemetry, stream=True)


async def test_responses_streaming_response_read_as_lines_async(telemetry: Telemetry, fake_provider: Any) -> None:
    async with async_client(fake_provider) as aclient, aclient.responses.with_streaming_response.create(
        model="gpt-4o-mini", input="hi", stream=True, extra_headers=HEADERS
    ) as response:
        lines = [line async for line in response.iter_lines() if line]
    assert any("response.completed" in line for line in lines)
    assert_responses_span(telemetry, stream=True)


def test_embeddings(telemetry: Telemetry, fake_provider: Any) -> None:
    result = client(fake_provider).embeddings.create(
        model="text-embedding-3-small",
        input=["one", "two"],
        extra_headers={"x-fake-usage": json.dumps({"prompt_tokens": 5000, "total_tokens": 5000})},
    )
    assert len(result.data) == 2
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.OPERATION_NAME] == "embeddings"
    assert attrs[names.USAGE_INPUT_TOKENS] == 5000
    assert attrs[names.USAGE_OUTPUT_TOKENS] == 0
    assert attrs[names.COST_USD] == pytest.approx(5000 * 0.02e-6, abs=1e-12)


async def test_embeddings_async(telemetry: Telemetry, fake_provider: Any) -> None:
    async with async_client(fake_provider) as aclient:
        await aclient.embeddings.create(
            model="text-embedding-3-small",
            input="one",
            extra_headers={"x-fake-usage": json.dumps({"prompt_tokens": 100, "total_tokens": 100})},
        )
    assert telemetry.only_span().attributes[names.COST_USD] == pytest.approx(100 * 0.02e-6, abs=1e-12)  # type: ignore[index]


def test_azure_client_is_its_own_provider(telemetry: Telemetry, fake_provider: Any) -> None:
    import openai

    from genai_meter._runtime import configure

    from ..conftest import fake_provider_settings

    configure(**fake_provider_settings(fake_provider, provider_hosts={}))
    azure = openai.AzureOpenAI(
        base_url=fake_provider.openai_base_url, api_key="azure-key", api_version="2024-10-21", max_retries=0
    )
    azure.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-fake-usage": json.dumps({"prompt_tokens": 1000, "completion_tokens": 0})},
    )
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.PROVIDER_NAME] == "azure.ai.openai"
    assert attrs[names.COST_USD] == pytest.approx(1000 * MINI_IN, abs=1e-12)
