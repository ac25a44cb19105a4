"""What a response reports is not trusted blindly.

- A whole response with no usage at all (the key left out, or null) is not recorded as a free call:
  its tokens are estimated from the prompt's and the answer's text, marked estimated and missing,
  and counted as fault `usage.missing`.
- A provider-reported cost (`usage.cost`, OpenRouter) that is not an amount is not used: the call is
  priced from its tokens and its usage is marked suspect.
- A response `model` that is not text is left off the span (and the request model is priced).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.instrumentation.utils import suppress_instrumentation

from genai_meter import names
from genai_meter._faults import fault_counts

from ..conftest import Telemetry
from .test_chat import EXPECTED_COST, MESSAGES, MINI_IN, MINI_OUT, async_client, client, usage_headers

SDK_CHUNKS = {"x-fake-stream-content-type": "application/octet-stream"}  # metered from the SDK's chunks
# The fake's answer is "chunk0 chunk1 chunk2 " (21 characters: 6 tokens at about 4 characters a
# token); MESSAGES' text is "hello there" (11 characters: 3 tokens).
ANSWER_TOKENS, PROMPT_TOKENS = 6, 3


def _chat(fake_provider: Any, headers: dict[str, str], *, stream: bool) -> None:
    """One chat call, whole or streamed to its end."""
    sdk = client(fake_provider)
    if stream:
        list(sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=headers))
    else:
        sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=headers)


def _assert_estimated(telemetry: Telemetry, input_tokens: int, output_tokens: int, cost: float) -> None:
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.OUTCOME] == names.OUTCOME_OK
    assert attrs[names.USAGE_MISSING] is True
    assert attrs[names.USAGE_ESTIMATED] is True
    assert (attrs[names.USAGE_INPUT_TOKENS], attrs[names.USAGE_OUTPUT_TOKENS]) == (input_tokens, output_tokens)
    assert attrs[names.COST_USD] == pytest.approx(cost, abs=1e-12)
    assert attrs[names.COST_SOURCE] == names.COST_SOURCE_ESTIMATED
    assert telemetry.total(names.COST.otel_name) == pytest.approx(cost, abs=1e-12)
    assert telemetry.total(names.ESTIMATED_CALLS.otel_name) == 1
    assert fault_counts() == {"usage.missing": 1}


@pytest.mark.parametrize("no_usage", ["absent", "null"])
def test_chat_without_usage_is_estimated_not_free(telemetry: Telemetry, fake_provider: Any, no_usage: str) -> None:
    completion = client(fake_provider).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-fake-no-usage": no_usage}
    )
    assert completion.usage is None
    _assert_estimated(telemetry, PROMPT_TOKENS, ANSWER_TOKENS, PROMPT_TOKENS * MINI_IN + ANSWER_TOKENS * MINI_OUT)


async def test_async_legacy_completion_without_usage_is_estimated(telemetry: Telemetry, fake_provider: Any) -> None:
    async with async_client(fake_provider) as aclient:
        await aclient.completions.create(
            model="gpt-4o-mini", prompt="hello there", extra_headers={"x-fake-no-usage": "absent"}
        )
    _assert_estimated(telemetry, PROMPT_TOKENS, ANSWER_TOKENS, PROMPT_TOKENS * MINI_IN + ANSWER_TOKENS * MINI_OUT)


def test_responses_without_usage_is_estimated_not_free(telemetry: Telemetry, fake_provider: Any) -> None:
    response = client(fake_provider).responses.create(
        model="gpt-4o-mini", input="hello there", extra_headers={"x-fake-no-usage": "null"}
    )
    assert response.usage is None
    _assert_estimated(telemetry, PROMPT_TOKENS, ANSWER_TOKENS, PROMPT_TOKENS * MINI_IN + ANSWER_TOKENS * MINI_OUT)


def test_embeddings_without_usage_estimate_their_input(telemetry: Telemetry, fake_provider: Any) -> None:
    client(fake_provider).embeddings.create(
        model="text-embedding-3-small", input=["hello there", "x"], extra_headers={"x-fake-no-usage": "absent"}
    )
    _assert_estimated(telemetry, 3, 0, 3 * 0.02e-6)  # 12 characters


def test_usage_present_is_not_estimated(telemetry: Telemetry, fake_provider: Any) -> None:
    client(fake_provider).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers())
    attrs = telemetry.only_span().attributes or {}
    assert names.USAGE_MISSING not in attrs and names.USAGE_ESTIMATED not in attrs
    assert fault_counts() == {}


@pytest.mark.parametrize("reported", ["inf", "nan", "-0.5", "-inf"])
@pytest.mark.parametrize("wire", [None, {}, SDK_CHUNKS], ids=["whole", "stream-bytes", "stream-sdk-chunks"])
def test_reported_cost_that_is_not_an_amount_is_not_used(
    telemetry: Telemetry, fake_provider: Any, reported: str, wire: dict[str, str] | None
) -> None:
    headers = usage_headers(**{"x-fake-cost": reported, **(wire or {})})
    _chat(fake_provider, headers, stream=wire is not None)
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.COST_USD] == pytest.approx(EXPECTED_COST, abs=1e-12)
    assert attrs[names.COST_SOURCE] == names.COST_SOURCE_PRICING
    assert attrs[names.USAGE_SUSPECT] is True
    assert telemetry.total(names.COST.otel_name) == pytest.approx(EXPECTED_COST, abs=1e-12)
    assert fault_counts() == {"usage.suspect": 1}


@pytest.mark.parametrize("wire", [{}, SDK_CHUNKS], ids=["stream-bytes", "stream-sdk-chunks"])
def test_reported_cost_that_is_an_amount_is_used_on_a_stream(
    telemetry: Telemetry, fake_provider: Any, wire: dict[str, str]
) -> None:
    headers = usage_headers(**{"x-fake-cost": "0.0123", **wire})
    list(
        client(fake_provider).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=headers
        )
    )
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.COST_USD] == pytest.approx(0.0123, abs=1e-12)
    assert attrs[names.COST_SOURCE] == names.COST_SOURCE_PROVIDER
    assert names.USAGE_SUSPECT not in attrs


@pytest.mark.parametrize("wire", [None, {}, SDK_CHUNKS], ids=["whole", "stream-bytes", "stream-sdk-chunks"])
def test_response_model_that_is_not_text_is_left_out(
    telemetry: Telemetry, fake_provider: Any, wire: dict[str, str] | None
) -> None:
    headers = usage_headers(**{"x-fake-fields": json.dumps({"model": 5, "id": 7}), **(wire or {})})
    _chat(fake_provider, headers, stream=wire is not None)
    attrs = telemetry.only_span().attributes or {}
    assert names.RESPONSE_MODEL not in attrs
    assert names.RESPONSE_ID not in attrs
    assert attrs[names.COST_USD] == pytest.approx(EXPECTED_COST, abs=1e-12)  # the request's model, priced
    histogram = telemetry.points(names.OPERATION_DURATION.otel_name)
    assert all(names.RESPONSE_MODEL not in point_attrs for point_attrs, _ in histogram)


def test_a_fault_of_genai_meter_is_not_blamed_on_the_provider(
    telemetry: Telemetry, fake_provider: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When genai-meter's own reading of a response fails, the call is recorded without tokens and the
    fault is counted where it happened: not as a response that carried no usage."""
    from genai_meter.instrumentation.openai import _observers

    def broken(_value: Any) -> Any:
        raise RuntimeError("genai-meter bug")

    monkeypatch.setattr(_observers, "text", broken)
    completion = client(fake_provider).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers()
    )
    assert completion.usage is not None and completion.usage.prompt_tokens == 1000  # the app is unaffected
    attrs = telemetry.only_span().attributes or {}
    assert names.USAGE_MISSING not in attrs and names.USAGE_INPUT_TOKENS not in attrs
    assert fault_counts() == {"openai.response": 1}


def test_stream_usage_that_is_an_empty_object_is_suspect_and_hidden(telemetry: Telemetry, fake_provider: Any) -> None:
    """`"usage": {}` on the usage chunk genai-meter asked for: the chunk is still hidden from the app
    (as on the chunk path) and the call counts 0 tokens, marked suspect, not an estimate."""
    headers = {"x-fake-usage": "{}"}
    sdk = client(fake_provider)
    with suppress_instrumentation():
        bare = [c.to_dict() for c in sdk.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=headers)]
    seen = [c.to_dict() for c in sdk.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=headers)]
    assert [c["choices"] for c in seen] == [c["choices"] for c in bare]
    attrs = telemetry.only_span().attributes or {}
    assert (attrs[names.USAGE_INPUT_TOKENS], attrs[names.USAGE_OUTPUT_TOKENS]) == (0, 0)
    assert attrs[names.USAGE_SUSPECT] is True and names.USAGE_ESTIMATED not in attrs
