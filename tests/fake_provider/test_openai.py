"""The real openai SDK (sync and async) against the fake: bodies, streams, usage, faults."""

from __future__ import annotations

import json

import openai
import pydantic
import pytest

from genai_meter.fake_provider import FakeProvider

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hello there!"},
]  # 9 + 12 chars


def usage_header(usage: dict[str, object]) -> dict[str, str]:
    return {"x-fake-usage": json.dumps(usage)}


def test_chat_default_usage_follows_the_documented_rule(oai: openai.OpenAI, fake: FakeProvider) -> None:
    reply = oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    assert reply.object == "chat.completion"
    assert reply.model == "gpt-4o-mini"
    assert reply.choices[0].message.content == "chunk0 chunk1 chunk2 "
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.total_tokens) == (6, 3, 9)
    assert reply.usage.prompt_tokens_details is not None
    assert reply.usage.prompt_tokens_details.cached_tokens == 0
    assert fake.request_count == 1
    recorded = fake.requests[0]
    assert (recorded.method, recorded.path) == ("POST", "/v1/chat/completions")
    assert recorded.body["model"] == "gpt-4o-mini"
    assert recorded.headers["authorization"] == "Bearer sk-test"


def test_chat_header_usage_is_returned_verbatim_with_total_filled(oai: openai.OpenAI) -> None:
    usage = {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 2},
    }
    reply = oai.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        extra_headers={**usage_header(usage), "x-fake-cost": "0.0125"},  # type: ignore[arg-type]
    )
    assert reply.usage is not None
    assert reply.usage.model_dump(exclude_none=True) == {**usage, "total_tokens": 15, "cost": 0.0125}


def test_chat_odd_usage_values_pass_through(oai: openai.OpenAI) -> None:
    odd = {"prompt_tokens": None, "completion_tokens": -3}
    raw = oai.chat.completions.with_raw_response.create(
        model="gpt-4o",
        messages=MESSAGES,
        extra_headers=usage_header(odd),  # type: ignore[arg-type]
    )
    assert json.loads(raw.text)["usage"] == odd  # no total: a component is not an int


def test_chat_model_and_content_headers(oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,  # type: ignore[arg-type]
        extra_headers={
            "x-fake-model": "gpt-4o-mini-2024-07-18",
            "x-fake-content": "hello",
            "x-fake-chunks": "2",
        },
    )
    assert reply.model == "gpt-4o-mini-2024-07-18"
    assert reply.choices[0].message.content == "hello"
    assert reply.usage is not None and reply.usage.completion_tokens == 2


def test_chat_stream_without_include_usage_has_no_usage_key(oai: openai.OpenAI, fake: FakeProvider) -> None:
    with oai.chat.completions.with_streaming_response.create(
        model="gpt-4o",
        messages=MESSAGES,
        stream=True,  # type: ignore[arg-type]
    ) as response:
        lines = [line for line in response.iter_lines() if line]
    payloads = [line.removeprefix("data: ") for line in lines]
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert len(chunks) == 5  # role, 3 content, finish
    assert all(c["object"] == "chat.completion.chunk" and "usage" not in c for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert [c["choices"][0]["delta"].get("content") for c in chunks[1:4]] == ["chunk0 ", "chunk1 ", "chunk2 "]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert fake.request_count == 1


def test_chat_stream_with_include_usage_ends_with_usage_chunk(oai: openai.OpenAI) -> None:
    usage = {"prompt_tokens": 7, "completion_tokens": 4}
    stream = oai.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={**usage_header(usage), "x-fake-chunks": "4"},
    )
    chunks = list(stream)
    assert len(chunks) == 7  # role, 4 content, finish, usage
    assert all(chunk.usage is None for chunk in chunks[:-1])
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.model_dump(exclude_none=True) == {**usage, "total_tokens": 11}
    assert "".join(c.choices[0].delta.content or "" for c in chunks[:-1]) == "chunk0 chunk1 chunk2 chunk3 "


def test_chat_stream_usage_chunk_carries_cost(oai: openai.OpenAI) -> None:
    chunks = list(
        oai.chat.completions.create(
            model="gpt-4o",
            messages=MESSAGES,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
            extra_headers={"x-fake-cost": "0.5"},
        )
    )
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.model_dump(exclude_none=True)["cost"] == 0.5


def test_chat_stream_raw_usage_null_on_every_other_chunk(oai: openai.OpenAI) -> None:
    with oai.chat.completions.with_streaming_response.create(
        model="gpt-4o",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},  # type: ignore[arg-type]
    ) as response:
        chunks = [json.loads(line[6:]) for line in response.iter_lines() if line and line != "data: [DONE]"]
    assert [c["usage"] is None for c in chunks] == [True] * 5 + [False]


async def test_async_chat_stream(aoai: openai.AsyncOpenAI) -> None:
    stream = await aoai.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (6, 3)


async def test_async_chat_non_stream(aoai: openai.AsyncOpenAI) -> None:
    reply = await aoai.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        extra_headers=usage_header({"prompt_tokens": 1, "completion_tokens": 2}),  # type: ignore[arg-type]
    )
    assert reply.usage is not None and reply.usage.total_tokens == 3


class Answer(pydantic.BaseModel):
    city: str
    population: int
    tags: list[str]


def test_chat_parse_gets_a_schema_instance(oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.parse(model="gpt-4o", messages=MESSAGES, response_format=Answer)  # type: ignore[arg-type]
    assert reply.choices[0].message.parsed == Answer(city="", population=0, tags=[])


def test_chat_parse_uses_header_content(oai: openai.OpenAI) -> None:
    content = json.dumps({"city": "Oslo", "population": 700000, "tags": ["north"]})
    reply = oai.chat.completions.parse(
        model="gpt-4o",
        messages=MESSAGES,
        response_format=Answer,
        extra_headers={"x-fake-content": content},  # type: ignore[arg-type]
    )
    assert reply.choices[0].message.parsed == Answer(city="Oslo", population=700000, tags=["north"])


RESPONSES_USAGE = {
    "input_tokens": 20,
    "output_tokens": 8,
    "input_tokens_details": {"cached_tokens": 5, "cache_write_tokens": 0},
    "output_tokens_details": {"reasoning_tokens": 3},
}


def test_responses_non_stream(oai: openai.OpenAI) -> None:
    reply = oai.responses.create(model="gpt-4.1", input="Hello there!", instructions="Be brief.")
    assert reply.object == "response" and reply.status == "completed"
    assert reply.output_text == "chunk0 chunk1 chunk2 "
    assert reply.usage is not None
    assert (reply.usage.input_tokens, reply.usage.output_tokens, reply.usage.total_tokens) == (6, 3, 9)


def test_responses_header_usage(oai: openai.OpenAI) -> None:
    reply = oai.responses.create(model="gpt-4.1", input="x", extra_headers=usage_header(RESPONSES_USAGE))
    assert reply.usage is not None
    assert reply.usage.model_dump(exclude_none=True) == {**RESPONSES_USAGE, "total_tokens": 28}


def test_responses_stream_event_sequence(oai: openai.OpenAI) -> None:
    stream = oai.responses.create(
        model="gpt-4.1", input="hi", stream=True, extra_headers=usage_header(RESPONSES_USAGE)
    )
    events = list(stream)
    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(11))
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.usage is not None
    assert completed.response.usage.total_tokens == 28
    assert events[0].type == "response.created" and events[0].response.usage is None


def test_responses_stream_helper_final_response(oai: openai.OpenAI) -> None:
    with oai.responses.stream(
        model="gpt-4.1", input="hi", extra_headers=usage_header(RESPONSES_USAGE)
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert deltas == ["chunk0 ", "chunk1 ", "chunk2 "]
    assert final.output_text == "chunk0 chunk1 chunk2 "
    assert final.usage is not None
    assert final.usage.input_tokens_details.cached_tokens == 5
    assert final.usage.output_tokens_details.reasoning_tokens == 3


async def test_async_responses_stream_helper(aoai: openai.AsyncOpenAI) -> None:
    async with aoai.responses.stream(model="gpt-4.1", input="hi") as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_response()
    assert final.usage is not None and final.usage.output_tokens == 3


def test_responses_parse(oai: openai.OpenAI) -> None:
    reply = oai.responses.parse(model="gpt-4.1", input="hi", text_format=Answer)
    assert reply.output_parsed == Answer(city="", population=0, tags=[])


def test_embeddings_default_base64_decoded_by_sdk(oai: openai.OpenAI, fake: FakeProvider) -> None:
    reply = oai.embeddings.create(model="text-embedding-3-small", input=["abcd", "abcdefghi"])
    assert fake.requests[0].body["encoding_format"] == "base64"
    assert reply.usage.prompt_tokens == 1 + 3 and reply.usage.total_tokens == 4
    assert reply.data[0].embedding == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
    assert reply.data[1].embedding[0] == 0.25


def test_embeddings_float_and_header_usage(oai: openai.OpenAI) -> None:
    reply = oai.embeddings.create(
        model="text-embedding-3-small",
        input="hello",
        encoding_format="float",
        dimensions=3,
        extra_headers=usage_header({"prompt_tokens": 42}),
    )
    assert reply.data[0].embedding == [0.0, 0.25, 0.5]
    assert (reply.usage.prompt_tokens, reply.usage.total_tokens) == (42, 42)


def test_legacy_completions(oai: openai.OpenAI) -> None:
    reply = oai.completions.create(model="gpt-3.5-turbo-instruct", prompt="12345678")
    assert reply.choices[0].text == "chunk0 chunk1 chunk2 "
    assert reply.usage is not None and (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (2, 3)
    chunks = list(
        oai.completions.create(
            model="gpt-3.5-turbo-instruct", prompt="x", stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 4


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(400, openai.BadRequestError), (429, openai.RateLimitError), (500, openai.InternalServerError)],
)
def test_errors_are_provider_shaped(oai: openai.OpenAI, status: int, error_class: type[Exception]) -> None:
    with pytest.raises(error_class) as caught:
        oai.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, extra_headers={"x-fake-error": str(status)}
        )  # type: ignore[arg-type]
    err = caught.value
    assert isinstance(err, openai.APIStatusError)
    assert err.status_code == status
    assert isinstance(err.body, dict) and err.body["message"] == f"fake provider error {status}"
    if status == 429:
        assert err.response.headers["retry-after"] == "0"
        assert err.code == "rate_limit_exceeded"


def test_retry_after_header_and_sdk_retries(fake: FakeProvider) -> None:
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-test", max_retries=2)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(
            model="gpt-4o",
            messages=MESSAGES,  # type: ignore[arg-type]
            extra_headers={"x-fake-error": "429", "x-fake-retry-after": "0.002"},
        )
    assert caught.value.response.headers["retry-after"] == "0.002"
    assert fake.request_count == 3


def test_stream_error_status_before_any_chunk(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError):
        oai.chat.completions.create(
            model="gpt-4o",
            messages=MESSAGES,
            stream=True,
            extra_headers={"x-fake-error": "500"},  # type: ignore[arg-type]
        )


def test_drop_after_raises_in_sdk(oai: openai.OpenAI) -> None:
    received: list[str] = []
    stream = oai.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        stream=True,
        extra_headers={"x-fake-drop-after": "2"},  # type: ignore[arg-type]
    )
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    assert received == ["chunk0 ", "chunk1 "]


async def test_drop_after_raises_in_async_responses_stream(aoai: openai.AsyncOpenAI) -> None:
    stream = await aoai.responses.create(
        model="gpt-4.1", input="hi", stream=True, extra_headers={"x-fake-drop-after": "1"}
    )
    with pytest.raises(openai.APIConnectionError):
        async for _ in stream:
            pass


def test_malformed_sse_raises(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        stream=True,
        extra_headers={"x-fake-malformed": "sse"},  # type: ignore[arg-type]
    )
    with pytest.raises(json.JSONDecodeError):
        list(stream)


def test_malformed_json_body_raises(oai: openai.OpenAI) -> None:
    raw = oai.chat.completions.with_raw_response.create(
        model="gpt-4o",
        messages=MESSAGES,
        extra_headers={"x-fake-malformed": "json"},  # type: ignore[arg-type]
    )
    assert raw.status_code == 200
    with pytest.raises(ValueError):
        json.loads(raw.text)


def test_latency_header_still_answers(oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, extra_headers={"x-fake-latency-ms": "5"}
    )  # type: ignore[arg-type]
    assert reply.usage is not None and reply.usage.completion_tokens == 3


def test_bad_control_header_is_a_400_naming_it(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, extra_headers={"x-fake-usage": "{nope"}
        )  # type: ignore[arg-type]
    assert "x-fake-usage" in str(caught.value)
