"""The real `anthropic` SDK over HTTP against the fake provider: tokens and cost exact on spans and metrics."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

from genai_meter import names
from genai_meter.fake_provider import FakeProvider

from ..conftest import Telemetry

pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")

MODEL = "claude-sonnet-4-5"
# Bundled prices (USD per million tokens) of claude-sonnet-4-5: input 3, cache read 0.3,
# cache write 3.75 (5 minutes) / 6 (1 hour), output 15.
IN, READ, WRITE_5M, WRITE_1H, OUT = 3e-6, 0.3e-6, 3.75e-6, 6e-6, 15e-6
USAGE = {
    "input_tokens": 1000,  # Anthropic's: excludes the cache reads and writes
    "cache_read_input_tokens": 2000,
    "cache_creation_input_tokens": 1500,
    "cache_creation": {"ephemeral_5m_input_tokens": 500, "ephemeral_1h_input_tokens": 1000},
    "output_tokens": 400,
    "output_tokens_details": {"thinking_tokens": 100},
}
INPUT_TOKENS = 1000 + 2000 + 1500
EXPECTED_COST = 1000 * IN + 2000 * READ + 500 * WRITE_5M + 1000 * WRITE_1H + 400 * OUT
MESSAGES: Any = [{"role": "user", "content": "hello there"}]


def usage_headers(usage: dict[str, Any] = USAGE, **extra: str) -> dict[str, str]:
    return {"x-fake-usage": json.dumps(usage), **extra}


def assert_metered(telemetry: Telemetry, *, cost: float = EXPECTED_COST, stream: bool = False,
                   provider: str = "anthropic", user: str | None = None) -> None:
    span = telemetry.only_span()
    attrs = dict(span.attributes or {})
    assert span.name == f"chat {MODEL}"
    assert attrs[names.PROVIDER_NAME] == provider
    assert attrs[names.OPERATION_NAME] == "chat"
    assert attrs[names.REQUEST_MODEL] == MODEL
    assert attrs[names.RESPONSE_MODEL] == MODEL
    assert attrs[names.RESPONSE_ID].startswith("msg_")
    assert attrs[names.REQUEST_STREAM] is stream
    assert attrs[names.USAGE_INPUT_TOKENS] == INPUT_TOKENS
    assert attrs[names.USAGE_OUTPUT_TOKENS] == 400
    assert attrs[names.USAGE_CACHE_READ_INPUT_TOKENS] == 2000
    assert attrs[names.USAGE_CACHE_WRITE_INPUT_TOKENS] == 1500
    assert attrs[names.USAGE_REASONING_OUTPUT_TOKENS] == 100
    assert attrs[names.RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert attrs[names.COST_USD] == pytest.approx(cost, abs=1e-9)
    assert attrs[names.COST_CACHE_WRITE_USD] == pytest.approx(500 * WRITE_5M + 1000 * WRITE_1H, abs=1e-12)
    assert attrs[names.COST_CACHE_READ_USD] == pytest.approx(2000 * READ, abs=1e-12)
    assert attrs[names.COST_SOURCE] == names.COST_SOURCE_PRICING
    assert attrs[names.OUTCOME] == names.OUTCOME_OK
    assert attrs.get(names.USER_ID) == user
    assert names.USAGE_ESTIMATED not in attrs
    assert telemetry.total(names.COST.otel_name, model=MODEL) == pytest.approx(cost, abs=1e-9)
    assert telemetry.total(names.TOKENS.otel_name, type="input") == INPUT_TOKENS
    assert telemetry.total(names.TOKENS.otel_name, type="output") == 400
    assert telemetry.total(names.TOKENS.otel_name, type="cache_read") == 2000
    assert telemetry.total(names.TOKENS.otel_name, type="cache_write") == 1500
    assert telemetry.total(names.TOKENS.otel_name, type="reasoning") == 100
    assert telemetry.total(names.REQUESTS.otel_name, outcome="ok") == 1
    assert telemetry.total(names.REQUESTS.otel_name) == 1


def test_create(telemetry: Telemetry, claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(model=MODEL, max_tokens=500, messages=MESSAGES, extra_headers=usage_headers())
    assert message.usage.input_tokens == 1000  # the app still sees the provider's own figures
    assert_metered(telemetry)


async def test_create_async(telemetry: Telemetry, aclaude: anthropic.AsyncAnthropic) -> None:
    await aclaude.messages.create(model=MODEL, max_tokens=500, messages=MESSAGES, extra_headers=usage_headers())
    assert_metered(telemetry)


def test_create_stream(telemetry: Telemetry, claude: anthropic.Anthropic, fake_provider: FakeProvider) -> None:
    events = list(claude.messages.create(
        model=MODEL, max_tokens=500, messages=MESSAGES, stream=True, extra_headers=usage_headers()))
    start = next(e for e in events if e.type == "message_start")
    delta = next(e for e in events if e.type == "message_delta")
    assert start.message.usage.output_tokens == 1 and delta.usage.output_tokens == 400  # counted once
    assert delta.usage.input_tokens == 1000  # the cumulative delta repeats the input: never added
    assert_metered(telemetry, stream=True)


@pytest.mark.parametrize(
    "wire",
    [{"x-fake-write-bytes": "7"}, {"x-fake-write-bytes": "29", "x-fake-sse-newline": "crlf"}],
    ids=["7-byte-pieces", "29-byte-pieces-crlf"],
)
def test_stream_split_at_any_byte(telemetry: Telemetry, claude: anthropic.Anthropic, wire: dict[str, str]) -> None:
    """The stream is read from its bytes: events cut anywhere, LF or CR LF lines, usage still exact
    and the app's events the same as uninstrumented."""
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    headers = usage_headers(**wire)
    with suppress_instrumentation():
        bare = [e.to_dict() for e in claude.messages.create(
            model=MODEL, max_tokens=500, messages=MESSAGES, stream=True, extra_headers=headers)]
    seen = [e.to_dict() for e in claude.messages.create(
        model=MODEL, max_tokens=500, messages=MESSAGES, stream=True, extra_headers=headers)]
    assert [e["type"] for e in seen] == [e["type"] for e in bare]
    assert [e.get("delta") for e in seen] == [e.get("delta") for e in bare]
    assert_metered(telemetry, stream=True)


async def test_async_stream_split_at_any_byte(telemetry: Telemetry, aclaude: anthropic.AsyncAnthropic) -> None:
    stream = await aclaude.messages.create(
        model=MODEL, max_tokens=500, messages=MESSAGES, stream=True,
        extra_headers=usage_headers(**{"x-fake-write-bytes": "13"}))
    kinds = [event.type async for event in stream]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert_metered(telemetry, stream=True)


async def test_create_stream_async(telemetry: Telemetry, aclaude: anthropic.AsyncAnthropic) -> None:
    stream = await aclaude.messages.create(
        model=MODEL, max_tokens=500, messages=MESSAGES, stream=True, extra_headers=usage_headers())
    kinds = [event.type async for event in stream]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert_metered(telemetry, stream=True)


def test_stream_helper_text_stream(telemetry: Telemetry, claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(model=MODEL, max_tokens=500, messages=MESSAGES,
                                extra_headers=usage_headers()) as stream:
        assert telemetry.spans() == []
        text = "".join(stream.text_stream)
    assert text == "chunk0 chunk1 chunk2 "
    assert_metered(telemetry, stream=True)


def test_stream_helper_get_final_message(telemetry: Telemetry, claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(model=MODEL, max_tokens=500, messages=MESSAGES,
                                extra_headers=usage_headers()) as stream:
        final = stream.get_final_message()
    assert final.usage.output_tokens == 400
    assert_metered(telemetry, stream=True)


async def test_stream_helper_async(telemetry: Telemetry, aclaude: anthropic.AsyncAnthropic) -> None:
    async with aclaude.messages.stream(model=MODEL, max_tokens=500, messages=MESSAGES,
                                       extra_headers=usage_headers()) as stream:
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "chunk0 chunk1 chunk2 " and final.usage.output_tokens == 400
    assert_metered(telemetry, stream=True)


def test_beta_create_and_stream(telemetry: Telemetry, claude: anthropic.Anthropic) -> None:
    claude.beta.messages.create(model=MODEL, max_tokens=500, messages=MESSAGES, extra_headers=usage_headers())
    assert_metered(telemetry)
    telemetry.spans_exporter.clear()
    with claude.beta.messages.stream(model=MODEL, max_tokens=500, messages=MESSAGES,
                                     extra_headers=usage_headers()) as stream:
        stream.get_final_message()
    spans = telemetry.spans()
    assert len(spans) == 1 and spans[0].attributes[names.COST_USD] == pytest.approx(EXPECTED_COST, abs=1e-9)  # type: ignore[index]
    assert telemetry.total(names.REQUESTS.otel_name) == 2


@pytest.mark.parametrize("stream", [False, True])
def test_compactions_are_billed(telemetry: Telemetry, claude: anthropic.Anthropic, stream: bool) -> None:
    """A context compaction's tokens are left out of the top-level usage (the SDK's `BetaUsage`) and
    billed: added in, streamed (the final `message_delta` carries them) or not."""
    usage = {"input_tokens": 1000, "output_tokens": 400, "iterations": [
        {"type": "compaction", "input_tokens": 150000, "output_tokens": 3000,
         "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0},
        {"type": "message", "input_tokens": 1000, "output_tokens": 400,
         "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}]}
    result = claude.beta.messages.create(model=MODEL, max_tokens=500, messages=MESSAGES, stream=stream,
                                         extra_headers=usage_headers(usage))
    if stream:
        list(result)  # type: ignore[arg-type]
    attrs = telemetry.only_span().attributes or {}
    assert (attrs[names.USAGE_INPUT_TOKENS], attrs[names.USAGE_OUTPUT_TOKENS]) == (151000, 3400)
    assert attrs[names.COST_USD] == pytest.approx((151000 * 3 + 3400 * 15) / 1e6, abs=1e-12)


async def test_beta_async(telemetry: Telemetry, aclaude: anthropic.AsyncAnthropic) -> None:
    stream = await aclaude.beta.messages.create(
        model=MODEL, max_tokens=500, messages=MESSAGES, stream=True, extra_headers=usage_headers())
    async for _event in stream:
        pass
    assert_metered(telemetry, stream=True)


def test_parse_structured_output(telemetry: Telemetry, claude: anthropic.Anthropic) -> None:
    from pydantic import BaseModel

    class Answer(BaseModel):
        answer: str

    message = claude.messages.parse(model=MODEL, max_tokens=500, messages=MESSAGES, output_format=Answer,
                                    extra_headers=usage_headers())
    assert message.parsed_output is not None
    assert_metered(telemetry)


def test_with_raw_response(telemetry: Telemetry, claude: anthropic.Anthropic) -> None:
    raw = claude.messages.with_raw_response.create(
        model=MODEL, max_tokens=500, messages=MESSAGES, extra_headers=usage_headers())
    assert raw.parse().usage.output_tokens == 400
    assert_metered(telemetry)


def test_streaming_response_read_as_lines(telemetry: Telemetry, claude: anthropic.Anthropic) -> None:
    """The SDK's README reads a raw stream with `iter_lines()`: the SDK's `Stream` is never iterated,
    so the stream is metered from its bytes (it was once ended as a 1-token estimate)."""
    with claude.messages.with_streaming_response.create(
        model=MODEL, max_tokens=500, messages=MESSAGES, stream=True, extra_headers=usage_headers()
    ) as response:
        lines = [line for line in response.iter_lines() if line]
    assert "event: message_stop" in lines
    assert_metered(telemetry, stream=True)


def test_raw_stream_parsed_by_the_app(telemetry: Telemetry, claude: anthropic.Anthropic) -> None:
    raw = claude.messages.with_raw_response.create(
        model=MODEL, max_tokens=500, messages=MESSAGES, stream=True, extra_headers=usage_headers())
    kinds = [event.type for event in raw.parse()]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert_metered(telemetry, stream=True)


async def test_streaming_response_read_as_lines_async(
    telemetry: Telemetry, aclaude: anthropic.AsyncAnthropic
) -> None:
    async with aclaude.messages.with_streaming_response.create(
        model=MODEL, max_tokens=500, messages=MESSAGES, stream=True, extra_headers=usage_headers()
    ) as response:
        lines = [line async for line in response.iter_lines() if line]
    assert "event: message_stop" in lines
    assert_metered(telemetry, stream=True)


def test_metadata_user_is_the_fallback_user(telemetry: Telemetry, claude: anthropic.Anthropic) -> None:
    claude.messages.create(model=MODEL, max_tokens=500, messages=MESSAGES, metadata={"user_id": "u-42"},
                           extra_headers=usage_headers())
    assert_metered(telemetry, user="u-42")
    assert telemetry.total(names.COST.otel_name, user="u-42") == pytest.approx(EXPECTED_COST, abs=1e-9)


def test_default_usage_without_cache_fields(telemetry: Telemetry, claude: anthropic.Anthropic) -> None:
    claude.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=MESSAGES,
                           extra_headers=usage_headers({"input_tokens": 120, "output_tokens": 30}))
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.USAGE_INPUT_TOKENS] == 120
    assert names.USAGE_CACHE_WRITE_INPUT_TOKENS not in attrs
    assert attrs[names.COST_USD] == pytest.approx(120 * 1e-6 + 30 * 5e-6, abs=1e-12)  # haiku 4.5: 1 / 5


def test_long_context_tier_prices_the_whole_call(telemetry: Telemetry, claude: anthropic.Anthropic) -> None:
    usage = {"input_tokens": 150_000, "cache_read_input_tokens": 60_000, "output_tokens": 1000}
    claude.messages.create(model=MODEL, max_tokens=5000, messages=MESSAGES, extra_headers=usage_headers(usage))
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.USAGE_INPUT_TOKENS] == 210_000  # above 200k: the higher tier for everything
    assert attrs[names.COST_USD] == pytest.approx(150_000 * 6e-6 + 60_000 * 0.6e-6 + 1000 * 22.5e-6, abs=1e-9)


def test_provider_error_is_recorded(telemetry: Telemetry, claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.RateLimitError):
        claude.messages.create(model=MODEL, max_tokens=5, messages=MESSAGES, extra_headers={"x-fake-error": "429"})
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.ERROR_TYPE] == "RateLimitError"
    assert attrs[names.OUTCOME] == names.OUTCOME_ERROR
    assert telemetry.total(names.REQUESTS.otel_name, outcome="error") == 1


def test_stream_helper_error_on_enter(telemetry: Telemetry, claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.InternalServerError), claude.messages.stream(
        model=MODEL, max_tokens=5, messages=MESSAGES, extra_headers={"x-fake-error": "500"}
    ):
        pass
    assert (telemetry.only_span().attributes or {})[names.OUTCOME] == names.OUTCOME_ERROR


def test_uninstrument_restores_the_sdk(telemetry: Telemetry, claude: anthropic.Anthropic) -> None:
    from genai_meter.instrumentation.anthropic import AnthropicInstrumentor

    AnthropicInstrumentor().uninstrument()
    claude.messages.create(model=MODEL, max_tokens=5, messages=MESSAGES)
    with claude.messages.stream(model=MODEL, max_tokens=5, messages=MESSAGES) as stream:
        stream.get_final_message()
    assert telemetry.spans() == []
    AnthropicInstrumentor().instrument()


def test_the_prompt_is_not_walked_when_nothing_needs_its_size(
    telemetry: Telemetry, claude: anthropic.Anthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The prompt's length only feeds estimates (a budget's reservation, a stream without usage):
    a call that needs neither does not walk a long conversation."""
    from genai_meter.instrumentation.anthropic import _wrappers

    walked: list[Any] = []
    monkeypatch.setattr(_wrappers, "content_chars", lambda value: walked.append(value) or 0)
    claude.messages.create(model=MODEL, max_tokens=500, messages=MESSAGES, extra_headers=usage_headers())
    for _event in claude.messages.create(
        model=MODEL, max_tokens=500, messages=MESSAGES, stream=True, extra_headers=usage_headers()
    ):
        pass
    assert walked == []
    assert len(telemetry.spans()) == 2
