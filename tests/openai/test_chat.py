"""The real `openai` SDK over HTTP against the fake provider: tokens and cost exact on spans and metrics."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from opentelemetry import context as otel_context
from opentelemetry.instrumentation.utils import suppress_instrumentation

from genai_meter import names

from ..conftest import Telemetry

# Bundled prices (USD per million tokens): gpt-4o-mini 0.15 input, 0.075 cached input, 0.60 output.
MINI_IN, MINI_CACHED, MINI_OUT = 0.15e-6, 0.075e-6, 0.60e-6
USAGE = {
    "prompt_tokens": 1000,
    "completion_tokens": 500,
    "prompt_tokens_details": {"cached_tokens": 200},
    "completion_tokens_details": {"reasoning_tokens": 100},
}
EXPECTED_COST = 800 * MINI_IN + 200 * MINI_CACHED + 500 * MINI_OUT
MESSAGES: Any = [{"role": "user", "content": "hello there"}]


def usage_headers(usage: dict[str, Any] = USAGE, **extra: str) -> dict[str, str]:
    return {"x-fake-usage": json.dumps(usage), **extra}


def client(fake_provider: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake_provider.openai_base_url, api_key="sk-test-key", max_retries=0)


def async_client(fake_provider: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake_provider.openai_base_url, api_key="sk-test-key", max_retries=0)


def assert_metered(
    telemetry: Telemetry,
    *,
    cost: float,
    input_tokens: int = 1000,
    output_tokens: int = 500,
    cached: int = 200,
    reasoning: int = 100,
    model: str = "gpt-4o-mini",
    stream: bool = False,
    operation: str = "chat",
) -> None:
    span = telemetry.only_span()
    attrs = dict(span.attributes or {})
    assert span.name == f"{operation} {model}"
    assert attrs[names.PROVIDER_NAME] == "openai"
    assert attrs[names.OPERATION_NAME] == operation
    assert attrs[names.REQUEST_MODEL] == model
    assert attrs[names.REQUEST_STREAM] is stream
    assert attrs[names.USAGE_INPUT_TOKENS] == input_tokens
    assert attrs[names.USAGE_OUTPUT_TOKENS] == output_tokens
    assert attrs.get(names.USAGE_CACHE_READ_INPUT_TOKENS, 0) == cached
    assert attrs.get(names.USAGE_REASONING_OUTPUT_TOKENS, 0) == reasoning
    assert attrs[names.COST_USD] == pytest.approx(cost, abs=1e-9)
    assert attrs[names.COST_SOURCE] == names.COST_SOURCE_PRICING
    assert attrs[names.PRICING_VERSION]
    assert attrs[names.OUTCOME] == names.OUTCOME_OK
    assert telemetry.total(names.COST.otel_name, model=model) == pytest.approx(cost, abs=1e-9)
    assert telemetry.total(names.TOKENS.otel_name, type="input") == input_tokens
    assert telemetry.total(names.TOKENS.otel_name, type="output") == output_tokens
    assert telemetry.total(names.TOKENS.otel_name, type="cache_read") == cached
    assert telemetry.total(names.TOKENS.otel_name, type="reasoning") == reasoning
    assert telemetry.total(names.REQUESTS.otel_name, outcome="ok") == 1
    histogram = telemetry.points(names.TOKEN_USAGE.otel_name)
    sums = {attrs[names.TOKEN_TYPE]: point.sum for attrs, point in histogram}
    assert sums == {"input": input_tokens, "output": output_tokens}
    ((duration_attrs, duration),) = telemetry.points(names.OPERATION_DURATION.otel_name)
    assert duration.count == 1
    assert list(duration.explicit_bounds) == list(names.OPERATION_DURATION_BUCKETS)
    assert duration_attrs[names.PROVIDER_NAME] == "openai"


def test_chat_sync(telemetry: Telemetry, fake_provider: Any) -> None:
    completion = client(fake_provider).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers()
    )
    assert completion.usage is not None and completion.usage.prompt_tokens == 1000
    assert_metered(telemetry, cost=EXPECTED_COST)
    assert telemetry.only_span().attributes[names.RESPONSE_ID] == completion.id  # type: ignore[index]


async def test_chat_async(telemetry: Telemetry, fake_provider: Any) -> None:
    async with async_client(fake_provider) as aclient:
        await aclient.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers()
        )
    assert_metered(telemetry, cost=EXPECTED_COST)


def _chunk_view(chunk: Any) -> Any:
    return (
        [c.model_dump() for c in chunk.choices],
        chunk.usage.model_dump() if chunk.usage is not None else None,
        chunk.model,
        sorted(chunk.model_fields_set),  # the same fields sent: no `"usage": null` the caller did not ask for
    )


def _bare_and_metered_views(sdk: openai.OpenAI, headers: dict[str, str]) -> tuple[list[Any], list[Any]]:
    """The chunks of one stream request made uninstrumented, then instrumented."""

    def views() -> list[Any]:
        return [
            _chunk_view(c)
            for c in sdk.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=headers
            )
        ]

    with suppress_instrumentation():
        bare = views()
    return bare, views()


def test_stream_injected_usage_is_hidden_from_the_caller(telemetry: Telemetry, fake_provider: Any) -> None:
    bare, seen = _bare_and_metered_views(client(fake_provider), usage_headers(**{"x-fake-chunks": "5"}))
    assert len(telemetry.spans()) == 1  # the metered request's only
    assert seen == bare
    assert all(view[0] for view in seen), "no usage-only chunk reaches the caller"
    assert fake_provider.requests[-1].body["stream_options"] == {"include_usage": True}
    assert_metered(telemetry, cost=EXPECTED_COST, stream=True)


async def test_stream_async_injected(telemetry: Telemetry, fake_provider: Any) -> None:
    async with async_client(fake_provider) as aclient:
        stream = await aclient.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=usage_headers()
        )
        chunks = [chunk async for chunk in stream]
    assert all(chunk.choices for chunk in chunks)
    assert_metered(telemetry, cost=EXPECTED_COST, stream=True)


def test_stream_with_callers_include_usage_keeps_the_usage_chunk(
    telemetry: Telemetry, fake_provider: Any
) -> None:
    chunks = list(
        client(fake_provider).chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
            extra_headers=usage_headers(),
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert_metered(telemetry, cost=EXPECTED_COST, stream=True)


def test_stream_without_usage_is_estimated(telemetry: Telemetry, fake_provider: Any) -> None:
    from genai_meter._runtime import configure

    from ..conftest import fake_provider_settings

    configure(**fake_provider_settings(fake_provider, inject_stream_usage={"127.0.0.1": False}))
    list(
        client(fake_provider).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers={"x-fake-chunks": "4"}
        )
    )
    assert "stream_options" not in fake_provider.requests[-1].body
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.USAGE_ESTIMATED] is True
    assert attrs[names.COST_SOURCE] == names.COST_SOURCE_ESTIMATED
    assert attrs[names.USAGE_OUTPUT_TOKENS] > 0
    assert telemetry.total(names.ESTIMATED_CALLS.otel_name) == 1


def test_parse_structured_output(telemetry: Telemetry, fake_provider: Any) -> None:
    from pydantic import BaseModel

    class Answer(BaseModel):
        answer: str

    completion = client(fake_provider).chat.completions.parse(
        model="gpt-4o-mini",
        messages=MESSAGES,
        response_format=Answer,
        extra_headers=usage_headers(**{"x-fake-content": '{"answer": "42"}'}),
    )
    assert completion.choices[0].message.parsed == Answer(answer="42")
    assert_metered(telemetry, cost=EXPECTED_COST)


def test_chat_stream_helper(telemetry: Telemetry, fake_provider: Any) -> None:
    with client(fake_provider).chat.completions.stream(
        model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers()
    ) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content
    assert_metered(telemetry, cost=EXPECTED_COST, stream=True)


def test_with_raw_response(telemetry: Telemetry, fake_provider: Any) -> None:
    raw = client(fake_provider).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, extra_headers=usage_headers()
    )
    assert raw.http_response.status_code == 200
    assert raw.parse().usage.completion_tokens == 500  # type: ignore[union-attr]
    assert_metered(telemetry, cost=EXPECTED_COST)


def test_with_raw_response_stream(telemetry: Telemetry, fake_provider: Any) -> None:
    raw = client(fake_provider).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=usage_headers()
    )
    chunks = list(raw.parse())
    assert chunks and all(chunk.choices for chunk in chunks)
    assert_metered(telemetry, cost=EXPECTED_COST, stream=True)


def test_provider_error_is_recorded(telemetry: Telemetry, fake_provider: Any) -> None:
    with pytest.raises(openai.RateLimitError):
        client(fake_provider).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-fake-error": "429"}
        )
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.ERROR_TYPE] == "RateLimitError"
    assert attrs[names.OUTCOME] == names.OUTCOME_ERROR
    assert telemetry.total(names.REQUESTS.otel_name, outcome="error") == 1
    assert telemetry.total(names.COST.otel_name) == 0


def test_unpriced_model_is_flagged_never_zero(
    telemetry: Telemetry, fake_provider: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sdk = client(fake_provider)
    for _ in range(2):
        sdk.chat.completions.create(model="mystery-model-x", messages=MESSAGES, extra_headers=usage_headers())
    for span in telemetry.spans():
        attrs = span.attributes or {}
        assert attrs[names.UNPRICED] is True
        assert names.COST_USD not in attrs
        assert attrs[names.USAGE_INPUT_TOKENS] == 1000
    assert telemetry.total(names.REQUESTS.otel_name, outcome="unpriced") == 2
    assert telemetry.total(names.UNPRICED_CALLS.otel_name, model="mystery-model-x") == 2
    assert telemetry.points(names.COST.otel_name) == []
    assert sum("mystery-model-x" in record.getMessage() for record in caplog.records) == 1


def test_dated_snapshot_is_priced_as_its_model(telemetry: Telemetry, fake_provider: Any) -> None:
    client(fake_provider).chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        extra_headers=usage_headers(**{"x-fake-model": "gpt-4o-mini-2024-07-18"}),
    )
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
    assert attrs[names.COST_USD] == pytest.approx(EXPECTED_COST, abs=1e-9)


def test_openrouter_reported_cost_is_used(telemetry: Telemetry, fake_provider: Any) -> None:
    from genai_meter._runtime import configure

    from ..conftest import fake_provider_settings

    configure(**fake_provider_settings(fake_provider, provider_hosts={"127.0.0.1": "openrouter"}))
    client(fake_provider).chat.completions.create(
        model="openai/gpt-4o-mini",
        messages=MESSAGES,
        extra_headers=usage_headers(**{"x-fake-cost": "0.0123"}),
    )
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.PROVIDER_NAME] == "openrouter"
    assert attrs[names.COST_USD] == pytest.approx(0.0123, abs=1e-12)
    assert attrs[names.COST_SOURCE] == names.COST_SOURCE_PROVIDER


@pytest.mark.parametrize(
    "wire",
    [{"x-fake-write-bytes": "7"}, {"x-fake-write-bytes": "37", "x-fake-sse-newline": "crlf"}],
    ids=["7-byte-pieces", "37-byte-pieces-crlf"],
)
def test_stream_split_at_any_byte_is_metered_and_unchanged(
    telemetry: Telemetry, fake_provider: Any, wire: dict[str, str]
) -> None:
    """Events arrive cut anywhere (inside the JSON, between the two newlines that end an event),
    with LF or CR LF lines: the caller still sees the uninstrumented chunks, the usage is exact."""
    bare, seen = _bare_and_metered_views(client(fake_provider), usage_headers(**{"x-fake-chunks": "4", **wire}))
    assert seen == bare
    assert len(seen) == 6  # role chunk, 4 content chunks, finish chunk; no usage chunk
    assert_metered(telemetry, cost=EXPECTED_COST, stream=True)
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.RESPONSE_FINISH_REASONS] == ("stop",)
    assert str(attrs[names.RESPONSE_ID]).startswith("chatcmpl-")


async def test_async_stream_split_at_any_byte(telemetry: Telemetry, fake_provider: Any) -> None:
    headers = usage_headers(**{"x-fake-chunks": "3", "x-fake-write-bytes": "11"})
    async with async_client(fake_provider) as aclient:
        stream = await aclient.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=headers
        )
        texts = [chunk.choices[0].delta.content async for chunk in stream if chunk.choices]
    assert texts == ["", "chunk0 ", "chunk1 ", "chunk2 ", None]
    assert_metered(telemetry, cost=EXPECTED_COST, stream=True)


def test_openrouter_reported_cost_is_used_on_a_stream(telemetry: Telemetry, fake_provider: Any) -> None:
    from genai_meter._runtime import configure

    from ..conftest import fake_provider_settings

    configure(
        **fake_provider_settings(
            fake_provider, provider_hosts={"127.0.0.1": "openrouter"}, inject_stream_usage_default=True
        )
    )
    for _chunk in client(fake_provider).chat.completions.create(
        model="openai/gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        extra_headers=usage_headers(**{"x-fake-cost": "0.0123"}),
    ):
        pass
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.PROVIDER_NAME] == "openrouter"
    assert attrs[names.COST_USD] == pytest.approx(0.0123, abs=1e-12)
    assert attrs[names.COST_SOURCE] == names.COST_SOURCE_PROVIDER


def test_stream_not_labelled_as_sse_is_metered_from_its_chunks(telemetry: Telemetry, fake_provider: Any) -> None:
    """A server that sends its stream under another Content-Type: the SDK still decodes it, and
    genai-meter reads the SDK's chunks instead of the bytes, with the same result."""
    headers = usage_headers(**{"x-fake-chunks": "3", "x-fake-stream-content-type": "application/octet-stream"})
    bare, seen = _bare_and_metered_views(client(fake_provider), headers)
    assert seen == bare  # no usage-only chunk, and no `"usage": null` in the fields the chunks say were sent
    assert_metered(telemetry, cost=EXPECTED_COST, stream=True)


@pytest.mark.parametrize(
    "wire",
    [{}, {"x-fake-write-bytes": "9"}, {"x-fake-stream-content-type": "application/octet-stream"}],
    ids=["bytes", "bytes-in-pieces", "sdk-chunks"],
)
def test_stream_usage_on_the_finish_chunk_is_read_and_hidden(
    telemetry: Telemetry, fake_provider: Any, wire: dict[str, str]
) -> None:
    """A compatible server that puts the usage genai-meter asked for on the finish chunk (not on a
    `choices: []` chunk): the usage is exact and the caller's finish chunk carries no usage, as
    uninstrumented."""
    headers = usage_headers(**{"x-fake-chunks": "3", "x-fake-stream-usage": "finish", **wire})
    bare, seen = _bare_and_metered_views(client(fake_provider), headers)
    assert seen == bare
    assert all(view[1] is None for view in seen)
    assert_metered(telemetry, cost=EXPECTED_COST, stream=True)


@pytest.mark.parametrize(
    "wire", [{}, {"x-fake-stream-content-type": "application/octet-stream"}], ids=["bytes", "sdk-chunks"]
)
def test_groq_usage_under_x_groq_is_read_without_injection(
    telemetry: Telemetry, fake_provider: Any, wire: dict[str, str]
) -> None:
    """Groq sends the usage as `x_groq.usage` on the finish chunk, asked for or not: a stream that
    genai-meter did not ask usage for is still priced exactly, not estimated."""
    from genai_meter._runtime import configure

    from ..conftest import fake_provider_settings

    configure(**fake_provider_settings(fake_provider, provider_hosts={"127.0.0.1": "groq"}, inject_stream_usage={}))
    headers = usage_headers(**{"x-fake-chunks": "3", "x-fake-stream-usage": "x_groq", **wire})
    chunks = list(
        client(fake_provider).chat.completions.create(
            model="llama-3.3-70b-versatile", messages=MESSAGES, stream=True, extra_headers=headers
        )
    )
    assert "stream_options" not in fake_provider.requests[-1].body
    assert len(chunks) == 5
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.PROVIDER_NAME] == "groq"
    assert names.USAGE_ESTIMATED not in attrs
    assert (attrs[names.USAGE_INPUT_TOKENS], attrs[names.USAGE_OUTPUT_TOKENS]) == (1000, 500)


@pytest.mark.parametrize("key", ["suppress_instrumentation", otel_context._SUPPRESS_INSTRUMENTATION_KEY])
def test_either_suppression_key_alone_leaves_the_call_unmetered(
    key: str, telemetry: Telemetry, fake_provider: Any
) -> None:
    """Each of the two context keys that `suppress_instrumentation()` sets suppresses metering by
    itself (the older plain key is what some instrumentations set alone)."""
    token = otel_context.attach(otel_context.set_value(key, True))
    try:
        client(fake_provider).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    finally:
        otel_context.detach(token)
    assert telemetry.spans() == []
    client(fake_provider).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert len(telemetry.spans()) == 1
