"""`models.embed_content` metered as `embeddings`: the real google-genai SDK against the fake
provider's `:batchEmbedContents`, sync and async; tokens from `usage_metadata`, else estimated."""

from __future__ import annotations

import json

import pytest
from google import genai
from google.genai import types

from genai_meter import names
from genai_meter._usage import estimate_tokens

from ..conftest import Telemetry

MODEL = "gemini-embedding-001"
PRICE = 0.15e-6  # USD per input token in the bundled data
# google-genai 2.x drops the API's `usageMetadata` from an embeddings response: the tokens are then
# estimated from the text (about 4 characters a token), and the call marked so.
SDK_KEEPS_USAGE = "usage_metadata" in types.EmbedContentResponse.model_fields


def _expected(reported: int, text: str) -> tuple[int, bool]:
    """(input tokens, estimated) for a call whose response reports `reported` tokens for `text`."""
    return (reported, False) if SDK_KEEPS_USAGE else (estimate_tokens(len(text)), True)


def _config(**headers: str) -> types.EmbedContentConfig:
    return types.EmbedContentConfig(http_options=types.HttpOptions(headers=headers))


def _assert_embedding(telemetry: Telemetry, tokens: int, *, estimated: bool = False) -> None:
    span = telemetry.only_span()
    attrs = dict(span.attributes or {})
    assert span.name == f"embeddings {MODEL}"
    assert attrs[names.OPERATION_NAME] == "embeddings"
    assert attrs[names.PROVIDER_NAME] == "gcp.gemini"
    assert attrs[names.USAGE_INPUT_TOKENS] == tokens
    assert attrs[names.USAGE_OUTPUT_TOKENS] == 0
    assert attrs[names.COST_USD] == pytest.approx(tokens * PRICE, abs=1e-15)
    assert (names.USAGE_ESTIMATED in attrs) is estimated
    assert telemetry.total(names.TOKENS.otel_name, type="input") == tokens
    assert telemetry.total(names.REQUESTS.otel_name, outcome="ok") == 1


def test_embed_content(telemetry: Telemetry, gemini: genai.Client) -> None:
    usage = json.dumps({"promptTokenCount": 1234, "totalTokenCount": 1234})
    response = gemini.models.embed_content(
        model=MODEL, contents=["hello there", "and again"], config=_config(**{"x-fake-usage": usage})
    )
    assert response.embeddings is not None and len(response.embeddings) == 2
    tokens, estimated = _expected(1234, "hello there" + "and again")
    _assert_embedding(telemetry, tokens, estimated=estimated)


async def test_embed_content_async(telemetry: Telemetry, gemini: genai.Client) -> None:
    usage = json.dumps({"promptTokenCount": 77, "totalTokenCount": 77})
    config = _config(**{"x-fake-usage": usage})
    await gemini.aio.models.embed_content(model=MODEL, contents="hello there", config=config)
    tokens, estimated = _expected(77, "hello there")
    _assert_embedding(telemetry, tokens, estimated=estimated)


def test_embed_content_without_usage_is_estimated(telemetry: Telemetry, gemini: genai.Client) -> None:
    gemini.models.embed_content(model=MODEL, contents="x" * 400, config=_config(**{"x-fake-no-usage": "absent"}))
    _assert_embedding(telemetry, 100, estimated=True)  # about 4 characters a token


def test_vertex_embeddings_token_counts() -> None:
    """Vertex AI reports no `usage_metadata` for embeddings but a count per embedding."""
    from genai_meter.instrumentation.google_genai._observers import _statistics_tokens

    def embedding(tokens: float | None) -> types.ContentEmbedding:
        statistics = None if tokens is None else types.ContentEmbeddingStatistics(token_count=tokens)
        return types.ContentEmbedding(values=[0.5], statistics=statistics)

    assert _statistics_tokens(types.EmbedContentResponse(embeddings=[embedding(5), embedding(7.0)])) == 12
    assert _statistics_tokens(types.EmbedContentResponse(embeddings=[embedding(5), embedding(None)])) is None
    assert _statistics_tokens(types.EmbedContentResponse(embeddings=[])) is None
