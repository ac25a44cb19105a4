"""The real anthropic SDK against the fake: messages, the stream helper, beta, faults."""

from __future__ import annotations

import json

import anthropic
import httpx2
import pytest

from genai_meter.fake_provider import FakeProvider

MESSAGES = [{"role": "user", "content": "Hello there!"}]  # 12 chars
USAGE = {
    "input_tokens": 100,
    "output_tokens": 9,
    "cache_read_input_tokens": 40,
    "cache_creation_input_tokens": 30,
    "cache_creation": {"ephemeral_5m_input_tokens": 10, "ephemeral_1h_input_tokens": 20},
}


def headers(**extra: str) -> dict[str, str]:
    return {"x-fake-usage": json.dumps(USAGE), **extra}


def test_default_usage_rule(claude: anthropic.Anthropic, fake: FakeProvider) -> None:
    message = claude.messages.create(
        model="claude-test-model",
        max_tokens=50,
        system="Be brief.",
        messages=MESSAGES,  # type: ignore[arg-type]
    )
    assert message.type == "message" and message.model == "claude-test-model"
    assert message.stop_reason == "end_turn"
    assert message.content[0].type == "text" and message.content[0].text == "chunk0 chunk1 chunk2 "
    assert (message.usage.input_tokens, message.usage.output_tokens) == (6, 3)  # ceil(21 / 4), 3 chunks
    assert message.usage.cache_read_input_tokens == 0
    assert fake.request_count == 1
    assert fake.requests[0].headers["authorization"] == "Bearer sk-ant-test"  # how anthropic 2.x sends keys


def test_header_usage_verbatim(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model="claude-x", max_tokens=5, messages=MESSAGES, extra_headers=headers()
    )  # type: ignore[arg-type]
    assert message.usage.model_dump(exclude_none=True) == USAGE


def test_raw_stream_event_sequence(claude: anthropic.Anthropic) -> None:
    stream = claude.messages.create(
        model="claude-x",
        max_tokens=5,
        messages=MESSAGES,
        stream=True,
        extra_headers=headers(),  # type: ignore[arg-type]
    )
    events = list(stream)  # the SDK drops `ping`
    assert [e.type for e in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start, delta = events[0], events[6]
    assert start.type == "message_start" and delta.type == "message_delta"
    assert start.message.usage.model_dump(exclude_none=True) == {**USAGE, "output_tokens": 1}
    assert delta.usage.model_dump(exclude_none=True) == {
        "input_tokens": 100,
        "output_tokens": 9,
        "cache_read_input_tokens": 40,
        "cache_creation_input_tokens": 30,
    }
    assert delta.delta.stop_reason == "end_turn"


def test_raw_wire_has_ping(claude: anthropic.Anthropic) -> None:
    with claude.messages.with_streaming_response.create(
        model="claude-x",
        max_tokens=5,
        messages=MESSAGES,
        stream=True,  # type: ignore[arg-type]
    ) as response:
        names = [line[7:] for line in response.iter_lines() if line.startswith("event: ")]
    assert names[:3] == ["message_start", "content_block_start", "ping"]


def test_stream_helper(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model="claude-x",
        max_tokens=5,
        messages=MESSAGES,
        extra_headers=headers(**{"x-fake-chunks": "2"}),  # type: ignore[arg-type]
    ) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    assert texts == ["chunk0 ", "chunk1 "]
    assert final.content[0].type == "text" and final.content[0].text == "chunk0 chunk1 "
    assert final.usage.model_dump(exclude_none=True) == USAGE


async def test_async_stream_helper(aclaude: anthropic.AsyncAnthropic) -> None:
    async with aclaude.messages.stream(
        model="claude-x",
        max_tokens=5,
        messages=MESSAGES,
        extra_headers=headers(),  # type: ignore[arg-type]
    ) as stream:
        texts = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert len(texts) == 3
    assert final.usage.output_tokens == 9


def test_beta_messages(claude: anthropic.Anthropic, fake: FakeProvider) -> None:
    message = claude.beta.messages.create(
        model="claude-x",
        max_tokens=5,
        messages=MESSAGES,
        extra_headers={"x-fake-model": "claude-x-20250101"},  # type: ignore[arg-type]
    )
    assert message.model == "claude-x-20250101"
    assert message.usage.output_tokens == 3
    assert fake.requests[0].path == "/v1/messages"


def test_count_tokens_is_not_a_billable_call(claude: anthropic.Anthropic, fake: FakeProvider) -> None:
    counted = claude.messages.count_tokens(model="claude-x", messages=MESSAGES)  # type: ignore[arg-type]
    assert counted.input_tokens == 3
    assert fake.request_count == 0


@pytest.mark.parametrize(
    ("status", "error_class", "kind"),
    [
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
    ],
)
def test_errors(claude: anthropic.Anthropic, status: int, error_class: type[Exception], kind: str) -> None:
    with pytest.raises(error_class) as caught:
        claude.messages.create(
            model="claude-x",
            max_tokens=5,
            messages=MESSAGES,
            extra_headers={"x-fake-error": str(status)},  # type: ignore[arg-type]
        )
    err = caught.value
    assert isinstance(err, anthropic.APIStatusError)
    assert err.status_code == status
    assert isinstance(err.body, dict) and err.body["error"]["type"] == kind
    if status == 429:
        assert err.response.headers["retry-after"] == "0"


def test_retries_are_fast_and_counted(fake: FakeProvider) -> None:
    client = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="k", max_retries=1)
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(
            model="claude-x",
            max_tokens=5,
            messages=MESSAGES,
            extra_headers={"x-fake-error": "429"},  # type: ignore[arg-type]
        )
    assert fake.request_count == 2


def test_drop_after_raises(claude: anthropic.Anthropic) -> None:
    with (
        pytest.raises(httpx2.RemoteProtocolError, match="incomplete chunked read"),
        claude.messages.stream(
            model="claude-x",
            max_tokens=5,
            messages=MESSAGES,
            extra_headers={"x-fake-drop-after": "1"},  # type: ignore[arg-type]
        ) as stream,
    ):
        list(stream.text_stream)


def test_malformed_sse_raises(claude: anthropic.Anthropic) -> None:
    stream = claude.messages.create(
        model="claude-x",
        max_tokens=5,
        messages=MESSAGES,
        stream=True,
        extra_headers={"x-fake-malformed": "sse"},  # type: ignore[arg-type]
    )
    with pytest.raises(json.JSONDecodeError):
        list(stream)


def test_structured_output_gets_a_schema_instance(claude: anthropic.Anthropic, fake: FakeProvider) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 2}}, "required": ["n"]}
    message = claude.messages.create(
        model="claude-x",
        max_tokens=5,
        messages=MESSAGES,  # type: ignore[arg-type]
        extra_body={"output_config": {"format": {"type": "json_schema", "schema": schema}}},
    )
    assert message.content[0].type == "text" and json.loads(message.content[0].text) == {"n": 2}
