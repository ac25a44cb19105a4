"""Pricing details a response carries, and what a Chat Completions stream records per choice.

- Responses API cache writes (`input_tokens_details.cache_write_tokens`) are priced at the cache
  write rate, as Chat Completions' are.
- The service tier a response says it was served at (`flex`, `priority`) prices the call and is on
  the span as `openai.response.service_tier`, for whole responses and streams, on the byte meter
  and the chunk fallback alike.
- A stream with `n` > 1 records one finish reason per choice, in the choices' order.
- A stream without usage estimates one output token per piece of text streamed (role and finish
  events are not output), the same on both stream paths.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from genai_meter import names
from genai_meter._runtime import configure

from ..conftest import Telemetry, fake_provider_settings
from .test_chat import MESSAGES, MINI_IN, MINI_OUT, async_client, client

SERVICE_TIER = names.OPENAI_RESPONSE_SERVICE_TIER
SDK_CHUNKS = {"x-fake-stream-content-type": "application/octet-stream"}  # metered from the SDK's chunks
STREAM_PATHS = pytest.mark.parametrize(
    "wire", [{}, {"x-fake-write-bytes": "13"}, SDK_CHUNKS], ids=["bytes", "bytes-in-pieces", "sdk-chunks"]
)
CHAT_USAGE = {"prompt_tokens": 1000, "completion_tokens": 500}
RESPONSES_USAGE = {"input_tokens": 1000, "output_tokens": 500}
# gpt-5-mini (USD per million tokens): 0.25 input, 2.00 output; flex 0.125 / 1.00.
GPT5_MINI = 1000 * 0.25e-6 + 500 * 2.0e-6
GPT5_MINI_FLEX = 1000 * 0.125e-6 + 500 * 1.0e-6
# gpt-4o-mini priority: 0.25 input, 1.00 output.
MINI_PRIORITY = 1000 * 0.25e-6 + 500 * 1.0e-6


def _usage(usage: dict[str, Any], **extra: str) -> dict[str, str]:
    return {"x-fake-usage": json.dumps(usage), **extra}


def _attrs(telemetry: Telemetry) -> Any:
    return telemetry.only_span().attributes or {}


def _assert_served_and_priced(telemetry: Telemetry, tier: str, cost_usd: float) -> None:
    """The call's span names the tier the provider served it at, and its cost is that tier's."""
    attrs = _attrs(telemetry)
    assert attrs[SERVICE_TIER] == tier
    assert attrs[names.COST_USD] == pytest.approx(cost_usd, abs=1e-12)


# --- D6: Responses API cache writes -------------------------------------------------------------------

# gpt-5.6-sol from 2026-08-21: 4.00 input, 0.40 cache read, 5.00 cache write, 20.00 output.
SOL_CACHE_USAGE = {
    "input_tokens": 1000,
    "output_tokens": 500,
    "input_tokens_details": {"cached_tokens": 200, "cache_write_tokens": 300},
    "output_tokens_details": {"reasoning_tokens": 0},
}
SOL_CACHE_COST = (500 * 4.0 + 200 * 0.4 + 300 * 5.0 + 500 * 20.0) / 1e6


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_responses_cache_writes_are_priced_as_cache_writes(
    telemetry: Telemetry, fake_provider: Any, stream: bool
) -> None:
    result = client(fake_provider).responses.create(
        model="gpt-5.6-sol", input="hi", stream=stream, extra_headers=_usage(SOL_CACHE_USAGE)
    )
    if stream:
        list(result)  # type: ignore[call-overload]
    attrs = _attrs(telemetry)
    assert attrs[names.USAGE_CACHE_READ_INPUT_TOKENS] == 200
    assert attrs[names.USAGE_CACHE_WRITE_INPUT_TOKENS] == 300
    assert attrs[names.COST_CACHE_WRITE_USD] == pytest.approx(300 * 5.0e-6, abs=1e-12)
    assert attrs[names.COST_USD] == pytest.approx(SOL_CACHE_COST, abs=1e-12)


# --- D7: service tiers --------------------------------------------------------------------------------


def test_chat_served_at_flex_is_priced_at_flex(telemetry: Telemetry, fake_provider: Any) -> None:
    completion = client(fake_provider).chat.completions.create(
        model="gpt-5-mini", messages=MESSAGES, service_tier="flex", extra_headers=_usage(CHAT_USAGE)
    )
    assert completion.service_tier == "flex"
    _assert_served_and_priced(telemetry, "flex", GPT5_MINI_FLEX)
    assert telemetry.total(names.COST.otel_name) == pytest.approx(GPT5_MINI_FLEX, abs=1e-12)


async def test_async_chat_served_at_priority_is_priced_at_priority(telemetry: Telemetry, fake_provider: Any) -> None:
    async with async_client(fake_provider) as aclient:
        await aclient.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, service_tier="priority", extra_headers=_usage(CHAT_USAGE)
        )
    _assert_served_and_priced(telemetry, "priority", MINI_PRIORITY)


def test_default_tier_is_priced_at_standard_rates(telemetry: Telemetry, fake_provider: Any) -> None:
    client(fake_provider).chat.completions.create(
        model="gpt-5-mini", messages=MESSAGES, service_tier="auto", extra_headers=_usage(CHAT_USAGE)
    )
    _assert_served_and_priced(telemetry, "default", GPT5_MINI)


@STREAM_PATHS
def test_chat_stream_served_at_flex_is_priced_at_flex(
    telemetry: Telemetry, fake_provider: Any, wire: dict[str, str]
) -> None:
    list(
        client(fake_provider).chat.completions.create(
            model="gpt-5-mini",
            messages=MESSAGES,
            stream=True,
            service_tier="flex",
            extra_headers=_usage(CHAT_USAGE, **wire),
        )
    )
    _assert_served_and_priced(telemetry, "flex", GPT5_MINI_FLEX)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_responses_served_at_flex_is_priced_at_flex(telemetry: Telemetry, fake_provider: Any, stream: bool) -> None:
    result = client(fake_provider).responses.create(
        model="gpt-5-mini", input="hi", stream=stream, service_tier="flex", extra_headers=_usage(RESPONSES_USAGE)
    )
    if stream:
        list(result)  # type: ignore[call-overload]
    _assert_served_and_priced(telemetry, "flex", GPT5_MINI_FLEX)


# --- D12: per-choice finish reasons; the stream estimate ----------------------------------------------


@STREAM_PATHS
def test_stream_with_two_choices_records_each_finish_reason(
    telemetry: Telemetry, fake_provider: Any, wire: dict[str, str]
) -> None:
    chunks = list(
        client(fake_provider).chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            n=2,
            stream=True,
            extra_headers=_usage(CHAT_USAGE, **{"x-fake-finish-reason": "length,stop", **wire}),
        )
    )
    finishes = [(c.choices[0].index, c.choices[0].finish_reason) for c in chunks if c.choices[0].finish_reason]
    assert finishes == [(0, "length"), (1, "stop")]
    attrs = _attrs(telemetry)
    assert attrs[names.RESPONSE_FINISH_REASONS] == ("length", "stop")
    assert attrs[names.COST_USD] == pytest.approx(1000 * MINI_IN + 500 * MINI_OUT, abs=1e-12)


def test_whole_response_with_two_choices_records_each_finish_reason(telemetry: Telemetry, fake_provider: Any) -> None:
    client(fake_provider).chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        n=2,
        extra_headers=_usage(CHAT_USAGE, **{"x-fake-finish-reason": "length,stop"}),
    )
    assert _attrs(telemetry)[names.RESPONSE_FINISH_REASONS] == ("length", "stop")


@pytest.mark.parametrize("n", [1, 2])
@STREAM_PATHS
def test_stream_without_usage_estimates_one_token_per_text_chunk(
    telemetry: Telemetry, fake_provider: Any, wire: dict[str, str], n: int
) -> None:
    """4 content chunks per choice (plus a role chunk and a finish chunk each): 4 output tokens a
    choice, whichever path meters the stream. The prompt, "hello there", is 3 tokens."""
    configure(**fake_provider_settings(fake_provider, inject_stream_usage={"127.0.0.1": False}))
    chunks = list(
        client(fake_provider).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, n=n, stream=True, extra_headers={"x-fake-chunks": "4", **wire}
        )
    )
    assert sum(1 for c in chunks if c.choices[0].delta.content) == 4 * n
    attrs = _attrs(telemetry)
    assert attrs[names.USAGE_ESTIMATED] is True
    assert (attrs[names.USAGE_INPUT_TOKENS], attrs[names.USAGE_OUTPUT_TOKENS]) == (3, 4 * n)
    assert attrs[names.COST_USD] == pytest.approx(3 * MINI_IN + 4 * n * MINI_OUT, abs=1e-12)


@pytest.mark.parametrize("wire", [{}, SDK_CHUNKS], ids=["bytes", "sdk-chunks"])
def test_legacy_completion_stream_without_usage_estimates_one_token_per_text_chunk(
    telemetry: Telemetry, fake_provider: Any, wire: dict[str, str]
) -> None:
    configure(**fake_provider_settings(fake_provider, inject_stream_usage={"127.0.0.1": False}))
    list(
        client(fake_provider).completions.create(
            model="gpt-4o-mini", prompt="hello there", stream=True, extra_headers={"x-fake-chunks": "5", **wire}
        )
    )
    attrs = _attrs(telemetry)
    assert (attrs[names.USAGE_INPUT_TOKENS], attrs[names.USAGE_OUTPUT_TOKENS]) == (3, 5)


@pytest.mark.parametrize(
    "key", ["llm.internal", "llm.internal:443", "https://llm.internal/v1", "https://llm.internal/v1/"]
)
def test_every_documented_key_form_names_a_server(telemetry: Telemetry, key: str) -> None:
    """`host`, `host:port` and a base URL name a server in `provider_hosts` and `inject_stream_usage`;
    `host:443` (the URL leaves the default port out) and a base URL with its trailing slash (as
    OPENAI_BASE_URL usually has it) once never matched."""
    import openai

    from genai_meter.instrumentation.openai._request import client_info

    runtime = configure(ledger_url="off", inject_stream_usage={key: True}, inject_stream_usage_default=False,
                        provider_hosts={key: "vllm"} if "/" not in key else {})
    sdk = openai.OpenAI(base_url="https://llm.internal/v1/", api_key="sk", max_retries=0)
    info = client_info(sdk.chat.completions, runtime)
    assert info.inject_stream_usage is True
    assert info.provider == ("vllm" if "/" not in key else "openai")


AUDIO_USAGE = {
    "prompt_tokens": 1000,
    "completion_tokens": 500,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 800},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 400},
}
# gpt-audio: text $2.50 in / $10 out, audio $32 in / $64 out per million tokens
GPT_AUDIO = (200 * 2.5 + 800 * 32 + 100 * 10 + 400 * 64) / 1e6


@pytest.mark.parametrize("stream", [False, True])
def test_audio_tokens_are_priced_at_the_audio_rates(telemetry: Telemetry, fake_provider: Any, stream: bool) -> None:
    """An audio chat model's audio tokens (in the prompt and completion details) cost 13 and 6.4
    times its text ones: priced apart, whole and streamed (the byte meter's usage event)."""
    answer = client(fake_provider).chat.completions.create(
        model="gpt-audio", messages=MESSAGES, stream=stream, extra_headers=_usage(AUDIO_USAGE)
    )
    if stream:
        list(answer)
    attrs = _attrs(telemetry)
    assert (attrs[names.USAGE_INPUT_TOKENS], attrs[names.USAGE_OUTPUT_TOKENS]) == (1000, 500)
    assert attrs[names.COST_USD] == pytest.approx(GPT_AUDIO, abs=1e-12)
    assert telemetry.total(names.COST.otel_name) == pytest.approx(GPT_AUDIO, abs=1e-12)
