"""The real google-genai SDK (Gemini Developer API backend) against the fake."""

from __future__ import annotations

import json

import httpx2
import pytest
from google import genai
from google.genai import errors, types

from genai_meter.fake_provider import FakeProvider

USAGE = {
    "promptTokenCount": 50,
    "candidatesTokenCount": 12,
    "cachedContentTokenCount": 20,
    "thoughtsTokenCount": 7,
}


def config(**headers: str) -> types.GenerateContentConfig:
    return types.GenerateContentConfig(http_options=types.HttpOptions(headers=headers))


def test_generate_default_usage(gemini: genai.Client, fake: FakeProvider) -> None:
    reply = gemini.models.generate_content(
        model="gemini-2.5-flash",
        contents="Hello there!",
        config=types.GenerateContentConfig(system_instruction="Be brief."),
    )
    assert reply.text == "chunk0 chunk1 chunk2 "
    assert reply.model_version == "gemini-2.5-flash"
    assert reply.usage_metadata is not None
    meta = reply.usage_metadata
    assert (meta.prompt_token_count, meta.candidates_token_count, meta.total_token_count) == (6, 3, 9)
    assert fake.request_count == 1
    recorded = fake.requests[0]
    assert recorded.path == "/v1/models/gemini-2.5-flash:generateContent"
    assert recorded.headers["x-goog-api-key"] == "test-key"


def test_generate_header_usage_fills_total(gemini: genai.Client) -> None:
    reply = gemini.models.generate_content(
        model="gemini-2.5-pro",
        contents="x",
        config=config(**{"x-fake-usage": json.dumps(USAGE), "x-fake-model": "gemini-2.5-pro-002"}),
    )
    assert reply.model_version == "gemini-2.5-pro-002"
    meta = reply.usage_metadata
    assert meta is not None
    assert meta.prompt_token_count == 50
    assert meta.cached_content_token_count == 20
    assert meta.thoughts_token_count == 7
    assert meta.total_token_count == 69  # prompt + candidates + thoughts


def test_stream_last_chunk_carries_full_usage(gemini: genai.Client) -> None:
    chunks = list(
        gemini.models.generate_content_stream(
            model="gemini-2.5-flash", contents="x", config=config(**{"x-fake-usage": json.dumps(USAGE)})
        )
    )
    assert [c.text for c in chunks] == ["chunk0 ", "chunk1 ", "chunk2 "]
    partial = [c.usage_metadata for c in chunks[:-1]]
    assert all(
        m is not None and m.prompt_token_count == 50 and m.candidates_token_count is None for m in partial
    )
    last = chunks[-1]
    assert last.candidates is not None and last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata is not None
    assert last.usage_metadata.candidates_token_count == 12
    assert last.usage_metadata.total_token_count == 69


async def test_async_stream(gemini: genai.Client) -> None:
    chunks = [
        chunk
        async for chunk in await gemini.aio.models.generate_content_stream(
            model="gemini-2.5-flash", contents="abcdefgh", config=config(**{"x-fake-chunks": "5"})
        )
    ]
    assert len(chunks) == 5
    assert chunks[-1].usage_metadata is not None
    assert chunks[-1].usage_metadata.prompt_token_count == 2
    assert chunks[-1].usage_metadata.candidates_token_count == 5


def test_v1beta_api_version_is_served(fake: FakeProvider) -> None:
    client = genai.Client(
        api_key="k", http_options=types.HttpOptions(base_url=fake.gemini_base_url, api_version="v1beta")
    )
    reply = client.models.generate_content(model="gemini-2.0-flash", contents="hi")
    assert reply.text == "chunk0 chunk1 chunk2 "
    assert fake.requests[0].path == "/v1beta/models/gemini-2.0-flash:generateContent"


@pytest.mark.parametrize("status", [400, 429, 500])
def test_errors(gemini: genai.Client, status: int) -> None:
    with pytest.raises(errors.APIError) as caught:
        gemini.models.generate_content(
            model="gemini-2.5-flash", contents="x", config=config(**{"x-fake-error": str(status)})
        )
    assert caught.value.code == status
    assert caught.value.message == f"fake provider error {status}"


def test_drop_after_raises(gemini: genai.Client) -> None:
    stream = gemini.models.generate_content_stream(
        model="gemini-2.5-flash", contents="x", config=config(**{"x-fake-drop-after": "1"})
    )
    with pytest.raises(httpx2.RemoteProtocolError, match="incomplete chunked read"):
        list(stream)


def test_structured_output(gemini: genai.Client) -> None:
    schema = {"type": "OBJECT", "properties": {"name": {"type": "STRING"}, "ok": {"type": "BOOLEAN"}}}
    reply = gemini.models.generate_content(
        model="gemini-2.5-flash",
        contents="x",
        config=types.GenerateContentConfig(response_mime_type="application/json", response_schema=schema),
    )
    assert json.loads(reply.text or "") == {"name": "", "ok": False}
