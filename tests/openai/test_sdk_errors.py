"""Whose exception ends a call, and what a call that ends in the SDK's error still records.

- A stream read to its end while the app handles an unrelated exception is not an error: only an
  exception that went through the SDK's stream iterator is the stream's.
- When the SDK raises after a whole response arrived (and was billed: structured output that fails
  validation, an answer cut at the length limit), the call is an error with the SDK's error type
  and still carries the response's tokens and cost.
- A raw response (`with_raw_response`) that the SDK itself cannot parse is the call's error, not a
  fault of genai-meter's, and nothing of the response's text reaches a log line.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import openai
import pydantic
import pytest

from genai_meter import names
from genai_meter._faults import fault_counts

from ..conftest import Telemetry
from .test_chat import EXPECTED_COST, MESSAGES, async_client, client, usage_headers

SDK_CHUNKS = {"x-fake-stream-content-type": "application/octet-stream"}  # metered from the SDK's chunks
STREAM_PATHS = pytest.mark.parametrize("wire", [{}, SDK_CHUNKS], ids=["bytes", "sdk-chunks"])
RESPONSES_USAGE = {
    "input_tokens": 1000,
    "output_tokens": 500,
    "input_tokens_details": {"cached_tokens": 200},
    "output_tokens_details": {"reasoning_tokens": 100},
}
SECRET = "COMPLETION-SENTINEL-4711"


class Answer(pydantic.BaseModel):
    answer: int


def _stream(sdk: openai.OpenAI, **wire: str) -> Any:
    return sdk.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=usage_headers(**wire)
    )


def _assert_ok_and_priced(attrs: Any) -> None:
    assert attrs[names.OUTCOME] == names.OUTCOME_OK
    assert names.ERROR_TYPE not in attrs
    assert (attrs[names.USAGE_INPUT_TOKENS], attrs[names.USAGE_OUTPUT_TOKENS]) == (1000, 500)
    assert attrs[names.COST_USD] == pytest.approx(EXPECTED_COST, abs=1e-12)


def _assert_error_and_priced(telemetry: Telemetry, error_type: str) -> None:
    """One call, ended with the SDK's error, carrying the response's exact tokens and cost."""
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.OUTCOME] == names.OUTCOME_ERROR
    assert attrs[names.ERROR_TYPE] == error_type
    assert (attrs[names.USAGE_INPUT_TOKENS], attrs[names.USAGE_OUTPUT_TOKENS]) == (1000, 500)
    assert attrs[names.USAGE_CACHE_READ_INPUT_TOKENS] == 200
    assert attrs[names.USAGE_REASONING_OUTPUT_TOKENS] == 100
    assert attrs[names.COST_USD] == pytest.approx(EXPECTED_COST, abs=1e-12)
    assert telemetry.total(names.COST.otel_name) == pytest.approx(EXPECTED_COST, abs=1e-12)
    assert telemetry.total(names.TOKENS.otel_name, type="input") == 1000
    assert telemetry.total(names.TOKENS.otel_name, type="output") == 500
    assert telemetry.total(names.REQUESTS.otel_name, outcome="error") == 1
    assert fault_counts() == {}


# --- D1: the app's handled exception is not the stream's --------------------------------------------


@STREAM_PATHS
def test_stream_read_inside_an_except_block_is_not_an_error(
    telemetry: Telemetry, fake_provider: Any, wire: dict[str, str]
) -> None:
    """The fallback pattern: a call fails, the app streams another inside its `except` block."""
    sdk = client(fake_provider)
    try:
        sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-fake-error": "429"})
    except openai.RateLimitError:
        chunks = list(_stream(sdk, **wire))
    assert chunks[-1].choices[0].finish_reason == "stop"
    failed, streamed = telemetry.spans()
    assert (failed.attributes or {})[names.ERROR_TYPE] == "RateLimitError"
    _assert_ok_and_priced(streamed.attributes or {})
    assert telemetry.total(names.REQUESTS.otel_name, outcome="error") == 1
    assert telemetry.total(names.REQUESTS.otel_name, outcome="ok") == 1


@STREAM_PATHS
def test_stream_in_a_with_block_inside_an_except_block_is_not_an_error(
    telemetry: Telemetry, fake_provider: Any, wire: dict[str, str]
) -> None:
    try:
        {}["missing"]
    except KeyError:
        with _stream(client(fake_provider), **wire) as stream:
            for _chunk in stream:
                pass
    _assert_ok_and_priced(telemetry.only_span().attributes or {})


async def test_async_stream_read_inside_an_except_block_is_not_an_error(
    telemetry: Telemetry, fake_provider: Any
) -> None:
    async with async_client(fake_provider) as aclient:
        try:
            raise KeyError("missing")
        except KeyError:
            stream = await aclient.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=usage_headers()
            )
            async for _chunk in stream:
                pass
    _assert_ok_and_priced(telemetry.only_span().attributes or {})


def test_stream_that_breaks_inside_an_except_block_has_its_own_error(telemetry: Telemetry, fake_provider: Any) -> None:
    """The connection drops mid-stream while the app handles a KeyError: the call's error is the
    SDK's, the one the app gets from the stream."""
    try:
        {}["missing"]
    except KeyError:
        # openai 3 raises APIConnectionError; openai 2 lets httpx's RemoteProtocolError through
        with pytest.raises((openai.APIConnectionError, httpx.RemoteProtocolError)) as raised:
            list(_stream(client(fake_provider), **{"x-fake-chunks": "6", "x-fake-drop-after": "2"}))
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.OUTCOME] == names.OUTCOME_ERROR
    assert attrs[names.ERROR_TYPE] == type(raised.value).__qualname__


# --- D2: the SDK raises after a whole, billed response ------------------------------------------------


def test_parse_cut_at_the_length_limit_keeps_its_usage(telemetry: Telemetry, fake_provider: Any) -> None:
    with pytest.raises(openai.LengthFinishReasonError):
        client(fake_provider).chat.completions.parse(
            model="gpt-4o-mini",
            messages=MESSAGES,
            response_format=Answer,
            extra_headers=usage_headers(**{"x-fake-content": '{"answer": 4', "x-fake-finish-reason": "length"}),
        )
    _assert_error_and_priced(telemetry, "LengthFinishReasonError")
    assert (telemetry.only_span().attributes or {})[names.RESPONSE_FINISH_REASONS] == ("length",)


def test_parse_whose_content_fails_validation_keeps_its_usage(telemetry: Telemetry, fake_provider: Any) -> None:
    with pytest.raises(pydantic.ValidationError):
        client(fake_provider).chat.completions.parse(
            model="gpt-4o-mini",
            messages=MESSAGES,
            response_format=Answer,
            extra_headers=usage_headers(**{"x-fake-content": '{"answer": "not a number"}'}),
        )
    _assert_error_and_priced(telemetry, "ValidationError")


async def test_async_parse_whose_content_fails_validation_keeps_its_usage(
    telemetry: Telemetry, fake_provider: Any
) -> None:
    async with async_client(fake_provider) as aclient:
        with pytest.raises(pydantic.ValidationError):
            await aclient.chat.completions.parse(
                model="gpt-4o-mini",
                messages=MESSAGES,
                response_format=Answer,
                extra_headers=usage_headers(**{"x-fake-content": "not json"}),
            )
    _assert_error_and_priced(telemetry, "ValidationError")


def test_responses_parse_whose_content_fails_validation_keeps_its_usage(
    telemetry: Telemetry, fake_provider: Any
) -> None:
    with pytest.raises(pydantic.ValidationError):
        client(fake_provider).responses.parse(
            model="gpt-4o-mini",
            input="hello there",
            text_format=Answer,
            extra_headers={"x-fake-usage": json.dumps(RESPONSES_USAGE), "x-fake-content": "not json"},
        )
    _assert_error_and_priced(telemetry, "ValidationError")


def test_provider_error_still_has_no_usage(telemetry: Telemetry, fake_provider: Any) -> None:
    """Nothing was received: nothing is billed, whatever the SDK's frames held."""
    with pytest.raises(openai.BadRequestError):
        client(fake_provider).chat.completions.parse(
            model="gpt-4o-mini", messages=MESSAGES, response_format=Answer, extra_headers={"x-fake-error": "400"}
        )
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.ERROR_TYPE] == "BadRequestError"
    assert names.USAGE_INPUT_TOKENS not in attrs and names.COST_USD not in attrs


# --- D3/D4: a raw response the SDK cannot parse -------------------------------------------------------


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_raw_response_that_fails_validation_is_the_calls_error(
    telemetry: Telemetry, fake_provider: Any, caplog: pytest.LogCaptureFixture, api: str
) -> None:
    caplog.set_level(logging.DEBUG)
    sdk = client(fake_provider)
    if api == "chat":
        raw: Any = sdk.chat.completions.with_raw_response.parse(
            model="gpt-4o-mini",
            messages=MESSAGES,
            response_format=Answer,
            extra_headers=usage_headers(**{"x-fake-content": SECRET}),
        )
    else:
        raw = sdk.responses.with_raw_response.parse(
            model="gpt-4o-mini",
            input="hello there",
            text_format=Answer,
            extra_headers={"x-fake-usage": json.dumps(RESPONSES_USAGE), "x-fake-content": SECRET},
        )
    assert raw.http_response.status_code == 200
    with pytest.raises(pydantic.ValidationError):
        raw.parse()  # the app's own parse fails the same way
    _assert_error_and_priced(telemetry, "ValidationError")
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("genai_meter"))
    assert SECRET not in ours  # (the SDK's own DEBUG log may print the body: not genai-meter's to police)


def test_raw_response_that_is_not_json_is_the_calls_error(telemetry: Telemetry, fake_provider: Any) -> None:
    raw = client(fake_provider).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-fake-malformed": "json"}
    )
    with pytest.raises(json.JSONDecodeError):
        raw.parse()
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.OUTCOME] == names.OUTCOME_ERROR
    assert attrs[names.ERROR_TYPE] == "JSONDecodeError"
    assert names.USAGE_INPUT_TOKENS not in attrs
    assert fault_counts() == {}


async def test_async_raw_response_that_is_not_json_is_the_calls_error(telemetry: Telemetry, fake_provider: Any) -> None:
    async with async_client(fake_provider) as aclient:
        raw = await aclient.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-fake-malformed": "json"}
        )
        with pytest.raises(json.JSONDecodeError):
            raw.parse()
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.ERROR_TYPE] == "JSONDecodeError"
    assert fault_counts() == {}


async def test_async_raw_response_that_fails_validation_keeps_its_usage(
    telemetry: Telemetry, fake_provider: Any
) -> None:
    async with async_client(fake_provider) as aclient:
        raw = await aclient.chat.completions.with_raw_response.parse(
            model="gpt-4o-mini",
            messages=MESSAGES,
            response_format=Answer,
            extra_headers=usage_headers(**{"x-fake-content": SECRET}),
        )
        with pytest.raises(pydantic.ValidationError):
            raw.parse()
    _assert_error_and_priced(telemetry, "ValidationError")


async def test_async_streaming_response_that_fails_validation_keeps_its_usage(
    telemetry: Telemetry, fake_provider: Any
) -> None:
    """`with_streaming_response`: the SDK's `parse()` is a coroutine here."""
    async with (
        async_client(fake_provider) as aclient,
        aclient.chat.completions.with_streaming_response.parse(
            model="gpt-4o-mini",
            messages=MESSAGES,
            response_format=Answer,
            extra_headers=usage_headers(**{"x-fake-content": SECRET}),
        ) as response,
    ):
        with pytest.raises(pydantic.ValidationError):
            await response.parse()
    _assert_error_and_priced(telemetry, "ValidationError")
