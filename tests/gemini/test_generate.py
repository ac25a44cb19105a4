"""The real `google-genai` SDK over HTTP against the fake provider: tokens (thinking included) and cost exact."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
from typing import Any

import pytest
from google import genai
from google.genai import errors, types

from genai_meter import names
from genai_meter.fake_provider import FakeProvider

from ..conftest import Telemetry

MODEL = "gemini-2.5-flash"
# Bundled prices (USD per million tokens) of gemini-2.5-flash: input 0.3, cached input 0.03, output 2.5.
IN, CACHED, OUT = 0.3e-6, 0.03e-6, 2.5e-6
USAGE = {
    "promptTokenCount": 1000,  # includes the cached tokens
    "cachedContentTokenCount": 400,
    "candidatesTokenCount": 200,
    "thoughtsTokenCount": 300,  # billed as output, reported apart
}
EXPECTED_COST = 600 * IN + 400 * CACHED + (200 + 300) * OUT


def config(usage: dict[str, Any] = USAGE, **headers: str) -> types.GenerateContentConfig:
    return types.GenerateContentConfig(
        http_options=types.HttpOptions(headers={"x-fake-usage": json.dumps(usage), **headers})
    )


def assert_metered(telemetry: Telemetry, *, stream: bool = False, provider: str = "gcp.gemini") -> None:
    span = telemetry.only_span()
    attrs = dict(span.attributes or {})
    assert span.name == f"generate_content {MODEL}"
    assert attrs[names.PROVIDER_NAME] == provider
    assert attrs[names.OPERATION_NAME] == "generate_content"
    assert attrs[names.REQUEST_MODEL] == MODEL
    assert attrs[names.RESPONSE_MODEL] == MODEL
    assert attrs[names.REQUEST_STREAM] is stream
    assert attrs[names.USAGE_INPUT_TOKENS] == 1000
    assert attrs[names.USAGE_OUTPUT_TOKENS] == 500
    assert attrs[names.USAGE_CACHE_READ_INPUT_TOKENS] == 400
    assert attrs[names.USAGE_REASONING_OUTPUT_TOKENS] == 300
    assert attrs[names.RESPONSE_FINISH_REASONS] == ("STOP",)
    assert attrs[names.COST_USD] == pytest.approx(EXPECTED_COST, abs=1e-9)
    assert attrs[names.COST_OUTPUT_USD] == pytest.approx(500 * OUT, abs=1e-12)
    assert attrs[names.OUTCOME] == names.OUTCOME_OK
    assert names.USAGE_ESTIMATED not in attrs
    assert telemetry.total(names.COST.otel_name, model=MODEL) == pytest.approx(EXPECTED_COST, abs=1e-9)
    assert telemetry.total(names.TOKENS.otel_name, type="input") == 1000
    assert telemetry.total(names.TOKENS.otel_name, type="output") == 500
    assert telemetry.total(names.TOKENS.otel_name, type="cache_read") == 400
    assert telemetry.total(names.TOKENS.otel_name, type="reasoning") == 300
    assert telemetry.total(names.REQUESTS.otel_name) == 1


def test_generate_content(telemetry: Telemetry, gemini: genai.Client) -> None:
    response = gemini.models.generate_content(model=MODEL, contents="hello there", config=config())
    assert response.usage_metadata is not None and response.usage_metadata.thoughts_token_count == 300
    assert_metered(telemetry)


def test_generate_content_returning_the_http_response(telemetry: Telemetry, gemini: genai.Client) -> None:
    """`should_return_http_response=True`: the SDK hands back only the HTTP body, usage inside it (it
    was once recorded as an estimate with no output and a missing-usage fault)."""
    settings = config()
    settings.should_return_http_response = True
    response = gemini.models.generate_content(model=MODEL, contents="hello there", config=settings)
    assert response.usage_metadata is None and response.sdk_http_response is not None
    assert json.loads(response.sdk_http_response.body or "{}")["usageMetadata"]["thoughtsTokenCount"] == 300
    assert_metered(telemetry)


async def test_generate_content_async(telemetry: Telemetry, gemini: genai.Client) -> None:
    await gemini.aio.models.generate_content(model=MODEL, contents="hello there", config=config())
    assert_metered(telemetry)


def test_generate_content_stream_takes_the_last_usage(telemetry: Telemetry, gemini: genai.Client) -> None:
    chunks = list(gemini.models.generate_content_stream(
        model=MODEL, contents="hello there", config=config(**{"x-fake-chunks": "4"})))
    assert len(chunks) == 4
    assert all(chunk.usage_metadata is not None for chunk in chunks)  # every chunk carries usage
    assert "".join(chunk.text or "" for chunk in chunks) == "chunk0 chunk1 chunk2 chunk3 "
    assert_metered(telemetry, stream=True)


async def test_generate_content_stream_async(telemetry: Telemetry, gemini: genai.Client) -> None:
    stream = await gemini.aio.models.generate_content_stream(model=MODEL, contents="hello there", config=config())
    texts = [chunk.text async for chunk in stream]
    assert "".join(t or "" for t in texts) == "chunk0 chunk1 chunk2 "
    assert_metered(telemetry, stream=True)


def test_chat_send_message(telemetry: Telemetry, gemini: genai.Client) -> None:
    chat = gemini.chats.create(model=MODEL, config=config())
    chat.send_message("hello there")
    assert_metered(telemetry)


def test_models_prefix_and_default_usage(telemetry: Telemetry, gemini: genai.Client) -> None:
    gemini.models.generate_content(model="models/gemini-2.0-flash", contents="x" * 40)
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.REQUEST_MODEL] == "gemini-2.0-flash"
    assert (attrs[names.USAGE_INPUT_TOKENS], attrs[names.USAGE_OUTPUT_TOKENS]) == (10, 3)
    assert names.USAGE_REASONING_OUTPUT_TOKENS not in attrs
    assert attrs[names.COST_USD] == pytest.approx(10 * 0.1e-6 + 3 * 0.4e-6, abs=1e-12)


def test_long_context_tier(telemetry: Telemetry, gemini: genai.Client) -> None:
    usage = {"promptTokenCount": 250_000, "candidatesTokenCount": 1000, "thoughtsTokenCount": 1000}
    gemini.models.generate_content(model="gemini-2.5-pro", contents="hi", config=config(usage))
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.COST_USD] == pytest.approx(250_000 * 2.5e-6 + 2000 * 15e-6, abs=1e-9)


def test_provider_error(telemetry: Telemetry, gemini: genai.Client) -> None:
    with pytest.raises(errors.ClientError):
        gemini.models.generate_content(model=MODEL, contents="hi", config=config(**{"x-fake-error": "429"}))
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.OUTCOME] == names.OUTCOME_ERROR
    assert attrs[names.ERROR_TYPE] == "ClientError"


def test_stream_error_before_first_chunk(telemetry: Telemetry, gemini: genai.Client) -> None:
    with pytest.raises(errors.APIError):
        list(gemini.models.generate_content_stream(model=MODEL, contents="hi",
                                                   config=config(**{"x-fake-error": "503"})))
    assert (telemetry.only_span().attributes or {})[names.OUTCOME] == names.OUTCOME_ERROR


def test_vertex_backend_is_provider_vertex(telemetry: Telemetry, fake_provider: FakeProvider) -> None:
    client = genai.Client(vertexai=True, api_key="test-key",
                          http_options=types.HttpOptions(base_url=fake_provider.gemini_base_url))
    with pytest.raises(errors.APIError):  # the fake serves no Vertex paths: a 404, still one metered call
        client.models.generate_content(model=MODEL, contents="hi", config=config())
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.PROVIDER_NAME] == "gcp.vertex_ai"


def test_provider_hosts_names_the_provider_and_a_later_configure_changes_it(
    telemetry: Telemetry, gemini: genai.Client, fake_provider: FakeProvider
) -> None:
    """The provider is resolved once per client URL (not per call), and again when the settings change."""
    from urllib.parse import urlsplit

    from genai_meter._runtime import configure

    host = urlsplit(fake_provider.gemini_base_url).hostname
    configure(ledger_url="off", provider_hosts={host: "gcp.vertex_ai"})
    gemini.models.generate_content(model=MODEL, contents="hi", config=config())
    gemini.models.generate_content(model=MODEL, contents="hi", config=config())
    configure(ledger_url="off")
    gemini.models.generate_content(model=MODEL, contents="hi", config=config())
    providers = [(span.attributes or {})[names.PROVIDER_NAME] for span in telemetry.spans()]
    assert providers == ["gcp.vertex_ai", "gcp.vertex_ai", "gcp.gemini"]


def test_stream_break(telemetry: Telemetry, gemini: genai.Client) -> None:
    stream = gemini.models.generate_content_stream(model=MODEL, contents="hi", config=config(**{"x-fake-chunks": "5"}))
    for _chunk in stream:
        break
    del stream, _chunk
    gc.collect()
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.USAGE_INPUT_TOKENS] == 1000  # the partial usage the first chunk carried
    # it has no output count: the output is estimated from the text seen ("chunk0 ", 7 characters)
    assert attrs[names.USAGE_OUTPUT_TOKENS] == 2
    assert attrs[names.USAGE_ESTIMATED] is True


def test_stream_break_before_the_last_chunk_estimates_the_output(telemetry: Telemetry, gemini: genai.Client) -> None:
    with contextlib.closing(
        gemini.models.generate_content_stream(model=MODEL, contents="hi", config=config(**{"x-fake-chunks": "5"}))
    ) as stream:
        for index, _chunk in enumerate(stream):
            if index == 3:
                break
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.USAGE_INPUT_TOKENS] == 1000
    assert attrs[names.USAGE_OUTPUT_TOKENS] == 7  # "chunk0 " .. "chunk3 ": 28 characters
    assert attrs[names.USAGE_ESTIMATED] is True
    assert attrs[names.COST_SOURCE] == names.COST_SOURCE_ESTIMATED


def test_stream_close(telemetry: Telemetry, gemini: genai.Client) -> None:
    stream = gemini.models.generate_content_stream(model=MODEL, contents="hi", config=config(**{"x-fake-chunks": "5"}))
    next(stream)
    stream.close()
    assert len(telemetry.spans()) == 1


def test_stream_exception_in_consumer(telemetry: Telemetry, gemini: genai.Client) -> None:
    with pytest.raises(ZeroDivisionError):
        for _chunk in gemini.models.generate_content_stream(model=MODEL, contents="hi", config=config()):
            1 / 0  # noqa: B018
    gc.collect()
    assert len(telemetry.spans()) == 1


def test_stream_garbage_collected_after_first_chunk(telemetry: Telemetry, gemini: genai.Client) -> None:
    stream = gemini.models.generate_content_stream(model=MODEL, contents="hi", config=config())
    next(stream)
    del stream
    gc.collect()
    assert len(telemetry.spans()) == 1


def test_stream_dropped_by_provider(telemetry: Telemetry, gemini: genai.Client) -> None:
    with pytest.raises(Exception):  # noqa: B017 - whatever the SDK raises for a broken connection
        list(gemini.models.generate_content_stream(
            model=MODEL, contents="hi", config=config(**{"x-fake-chunks": "6", "x-fake-drop-after": "2"})))
    gc.collect()
    assert (telemetry.only_span().attributes or {})[names.OUTCOME] == names.OUTCOME_ERROR


async def test_async_stream_break_and_aclose(telemetry: Telemetry, gemini: genai.Client) -> None:
    stream = await gemini.aio.models.generate_content_stream(model=MODEL, contents="hi", config=config())
    async for _chunk in stream:
        break
    await stream.aclose()  # type: ignore[attr-defined]
    await _until_one_span(telemetry)


async def _until_one_span(telemetry: Telemetry) -> None:
    """The SDK nests async generators; the event loop closes each abandoned one in a task of its own."""
    for _ in range(200):
        gc.collect()
        if telemetry.spans():
            break
        await asyncio.sleep(0)
    assert len(telemetry.spans()) == 1


async def test_async_stream_garbage_collected(telemetry: Telemetry, gemini: genai.Client) -> None:
    stream = await gemini.aio.models.generate_content_stream(model=MODEL, contents="hi", config=config())
    async for _chunk in stream:
        break
    del stream
    await _until_one_span(telemetry)


@pytest.mark.parametrize("stream", [False, True])
def test_audio_input_is_priced_at_its_audio_rate(telemetry: Telemetry, gemini: genai.Client, stream: bool) -> None:
    """Audio in the prompt (`promptTokensDetails`, modality AUDIO) costs $1.00 per million tokens on
    gemini-2.5-flash, text $0.30: a voice note transcribed is priced as audio."""
    usage = {
        "promptTokenCount": 10_000,
        "candidatesTokenCount": 100,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 1_000}, {"modality": "AUDIO", "tokenCount": 9_000}],
    }
    contents = "transcribe this"
    if stream:
        list(gemini.models.generate_content_stream(model=MODEL, contents=contents, config=config(usage)))
    else:
        gemini.models.generate_content(model=MODEL, contents=contents, config=config(usage))
    attrs = dict(telemetry.only_span().attributes or {})
    assert attrs[names.USAGE_INPUT_TOKENS] == 10_000
    assert attrs[names.COST_USD] == pytest.approx((1_000 * 0.3 + 9_000 * 1.0 + 100 * 2.5) / 1e6, abs=1e-12)


LONG = 300  # chunks: more than a stream observer keeps (`KEPT_LIMIT`), so some are read and let go of early


def test_a_long_stream_read_to_its_end_takes_the_last_usage(telemetry: Telemetry, gemini: genai.Client) -> None:
    chunks = list(gemini.models.generate_content_stream(
        model=MODEL, contents="hello there", config=config(**{"x-fake-chunks": str(LONG)})))
    assert len(chunks) == LONG
    assert_metered(telemetry, stream=True)


def test_a_long_stream_cut_short_estimates_from_all_the_text_seen(telemetry: Telemetry, gemini: genai.Client) -> None:
    with contextlib.closing(
        gemini.models.generate_content_stream(model=MODEL, contents="hi", config=config(**{"x-fake-chunks": str(LONG)}))
    ) as stream:
        for index, _chunk in enumerate(stream):
            if index == 280:
                break
    attrs = telemetry.only_span().attributes or {}
    characters = sum(len(f"chunk{index} ") for index in range(281))  # the text of the chunks read, early ones too
    assert attrs[names.USAGE_OUTPUT_TOKENS] == (characters + 3) // 4 == 605
    assert attrs[names.USAGE_INPUT_TOKENS] == 1000 and attrs[names.USAGE_ESTIMATED] is True


def test_a_fault_reading_the_chunks_kept_is_counted_and_the_stream_goes_on(
    telemetry: Telemetry, gemini: genai.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from genai_meter._faults import fault_counts, reset_faults
    from genai_meter.instrumentation.google_genai import _observers

    def broken(chunk: Any) -> int:
        raise RuntimeError("injected")

    reset_faults()
    monkeypatch.setattr(_observers, "_text_chars", broken)
    chunks = list(gemini.models.generate_content_stream(
        model=MODEL, contents="hello there", config=config(**{"x-fake-chunks": str(LONG)})))
    assert len(chunks) == LONG  # the app's stream is whole
    assert fault_counts() == {"stream.observe": 1}
    assert_metered(telemetry, stream=True)  # the last chunk's usage, read at the end, is exact
    reset_faults()
