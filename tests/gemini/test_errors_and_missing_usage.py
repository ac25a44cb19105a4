"""Gemini calls that fail before any chunk, and responses that carry no usage: an error is never
charged an estimate, the request is sent under the call's span, and a response without usage is
estimated (and says so) instead of recorded at $0."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google import genai
from google.genai import errors, types
from opentelemetry import trace

from genai_meter import names
from genai_meter._faults import fault_counts

from ..conftest import Telemetry

MODEL = "gemini-2.5-flash"
PROMPT = "x" * 4000  # about 1000 tokens at 4 characters a token


def headers(**values: str) -> types.GenerateContentConfig:
    return types.GenerateContentConfig(http_options=types.HttpOptions(headers=values))


def assert_error_without_cost(telemetry: Telemetry) -> None:
    attrs = dict(telemetry.only_span().attributes or {})
    assert attrs[names.OUTCOME] == names.OUTCOME_ERROR
    for unwanted in (names.USAGE_INPUT_TOKENS, names.COST_USD, names.USAGE_ESTIMATED):
        assert unwanted not in attrs, unwanted
    assert telemetry.total(names.COST.otel_name) == 0
    assert telemetry.total(names.REQUESTS.otel_name, outcome="error") == 1


@pytest.mark.parametrize("status", ["429", "400"])
def test_refused_stream_is_an_error_without_cost(telemetry: Telemetry, gemini: genai.Client, status: str) -> None:
    with pytest.raises(errors.ClientError):
        for _chunk in gemini.models.generate_content_stream(
            model=MODEL, contents=PROMPT, config=headers(**{"x-fake-error": status})
        ):
            pass
    assert_error_without_cost(telemetry)


def test_stream_broken_before_its_first_chunk_has_no_estimate(telemetry: Telemetry, gemini: genai.Client) -> None:
    with pytest.raises(Exception):  # noqa: B017 - whatever the SDK raises for a broken connection
        list(
            gemini.models.generate_content_stream(
                model=MODEL, contents=PROMPT, config=headers(**{"x-fake-drop-after": "0"})
            )
        )
    assert_error_without_cost(telemetry)


async def test_async_stream_broken_before_its_first_chunk_has_no_estimate(
    telemetry: Telemetry, gemini: genai.Client
) -> None:
    """The async SDK sends the request before handing out its chunks: the failure comes from the
    metered stream itself, which saw nothing, and so estimates nothing."""
    with pytest.raises(Exception):  # noqa: B017
        stream = await gemini.aio.models.generate_content_stream(
            model=MODEL, contents=PROMPT, config=headers(**{"x-fake-drop-after": "0"})
        )
        async for _chunk in stream:
            pass
    assert_error_without_cost(telemetry)


def test_stream_request_is_sent_under_the_call_span(
    telemetry: Telemetry, gemini: genai.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK sends a streamed request on the first read of its generator: that read happens with
    genai-meter's span current, so the HTTP request (and its client span) nests under the call."""
    current: list[int] = []
    http_client = type(gemini._api_client._httpx_client)  # httpx's or httpx2's, as installed
    send = http_client.send

    def recording_send(self: Any, *args: Any, **kwargs: Any) -> Any:
        current.append(trace.get_current_span().get_span_context().span_id)
        return send(self, *args, **kwargs)

    monkeypatch.setattr(http_client, "send", recording_send)
    for _chunk in gemini.models.generate_content_stream(model=MODEL, contents="hi"):
        pass
    assert current == [telemetry.only_span().context.span_id]


@pytest.mark.parametrize("missing", ["null", "absent"])
def test_response_without_usage_is_estimated(telemetry: Telemetry, gemini: genai.Client, missing: str) -> None:
    response = gemini.models.generate_content(
        model=MODEL, contents=PROMPT, config=headers(**{"x-fake-no-usage": missing, "x-fake-content": "y" * 400})
    )
    assert response.usage_metadata is None
    attrs = dict(telemetry.only_span().attributes or {})
    assert attrs[names.OUTCOME] == names.OUTCOME_OK
    assert attrs[names.USAGE_MISSING] is True
    assert attrs[names.USAGE_ESTIMATED] is True
    assert attrs[names.USAGE_INPUT_TOKENS] == 1000
    assert attrs[names.USAGE_OUTPUT_TOKENS] == 100
    assert attrs[names.COST_USD] == pytest.approx(1000 * 0.3e-6 + 100 * 2.5e-6, abs=1e-12)
    assert attrs[names.COST_SOURCE] == names.COST_SOURCE_ESTIMATED
    assert fault_counts().get("usage.missing") == 1


def test_usage_reported_is_not_estimated(telemetry: Telemetry, gemini: genai.Client) -> None:
    usage = {"promptTokenCount": 10, "candidatesTokenCount": 5}
    gemini.models.generate_content(model=MODEL, contents=PROMPT, config=headers(**{"x-fake-usage": json.dumps(usage)}))
    attrs = dict(telemetry.only_span().attributes or {})
    assert (attrs[names.USAGE_INPUT_TOKENS], attrs[names.USAGE_OUTPUT_TOKENS]) == (10, 5)
    assert names.USAGE_MISSING not in attrs and names.USAGE_ESTIMATED not in attrs
