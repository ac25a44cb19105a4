"""An Anthropic stream broken off in any way still ends exactly one span, with what was seen."""

from __future__ import annotations

import gc
from typing import Any

import anthropic
import pytest

from genai_meter import names

from ..conftest import Telemetry
from .test_messages import EXPECTED_COST, MESSAGES, MODEL, usage_headers

pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")


def _stream(claude: anthropic.Anthropic, **extra: str) -> Any:
    return claude.messages.create(model=MODEL, max_tokens=500, messages=MESSAGES, stream=True,
                                  extra_headers=usage_headers(**{"x-fake-chunks": "5", **extra}))


def test_break_after_message_start_keeps_the_input_side(telemetry: Telemetry, claude: anthropic.Anthropic) -> None:
    stream = _stream(claude)
    for _event in stream:
        break
    del stream, _event
    gc.collect()
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.USAGE_INPUT_TOKENS] == 4500  # message_start's input side, exact
    assert attrs[names.USAGE_OUTPUT_TOKENS] == 1  # its placeholder: no text was seen to estimate from
    assert attrs[names.USAGE_ESTIMATED] is True


def test_break_at_the_end_of_the_text_estimates_the_output(
    telemetry: Telemetry, claude: anthropic.Anthropic
) -> None:
    """An app that stops reading once the text is complete never sees `message_delta`: the output
    is estimated from the streamed text (5 deltas of "chunkN ", 35 characters: 9 tokens), not left
    at message_start's placeholder of 1, and the usage says it is an estimate."""
    with _stream(claude) as stream:
        for event in stream:
            if event.type == "content_block_stop":
                break
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.USAGE_INPUT_TOKENS] == 4500
    assert attrs[names.USAGE_OUTPUT_TOKENS] == 9
    assert attrs[names.USAGE_ESTIMATED] is True
    assert attrs[names.COST_SOURCE] == names.COST_SOURCE_ESTIMATED


def test_break_at_message_delta_gets_the_final_usage(telemetry: Telemetry, claude: anthropic.Anthropic) -> None:
    with _stream(claude) as stream:
        for event in stream:
            if event.type == "message_delta":
                break
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.COST_USD] == pytest.approx(EXPECTED_COST, abs=1e-9)


def test_close(telemetry: Telemetry, claude: anthropic.Anthropic) -> None:
    stream = _stream(claude)
    next(iter(stream))
    stream.close()
    assert len(telemetry.spans()) == 1


def test_exception_in_consumer_inside_stream_helper(telemetry: Telemetry, claude: anthropic.Anthropic) -> None:
    with pytest.raises(ZeroDivisionError), claude.messages.stream(
        model=MODEL, max_tokens=500, messages=MESSAGES, extra_headers=usage_headers()
    ) as stream:
        for _text in stream.text_stream:
            1 / 0  # noqa: B018
    span = telemetry.only_span()
    assert (span.attributes or {})[names.USAGE_INPUT_TOKENS] == 4500


def test_garbage_collected_before_reading(telemetry: Telemetry, claude: anthropic.Anthropic) -> None:
    stream = _stream(claude)
    assert telemetry.spans() == []
    del stream
    gc.collect()
    assert len(telemetry.spans()) == 1


def test_stream_helper_left_early_and_collected(telemetry: Telemetry, claude: anthropic.Anthropic) -> None:
    manager = claude.messages.stream(model=MODEL, max_tokens=500, messages=MESSAGES, extra_headers=usage_headers())
    stream = manager.__enter__()
    next(iter(stream.text_stream))
    del manager, stream
    gc.collect()
    assert len(telemetry.spans()) == 1


def test_exhausted_then_closed_counts_once(telemetry: Telemetry, claude: anthropic.Anthropic) -> None:
    stream = _stream(claude)
    list(stream)
    stream.close()
    del stream
    gc.collect()
    assert len(telemetry.spans()) == 1
    assert telemetry.total(names.REQUESTS.otel_name) == 1


def test_provider_drops_the_stream(telemetry: Telemetry, claude: anthropic.Anthropic) -> None:
    stream = _stream(claude, **{"x-fake-drop-after": "2"})
    with pytest.raises(Exception):  # noqa: B017 - whatever the SDK raises for a broken connection
        list(stream)
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.OUTCOME] == names.OUTCOME_ERROR
    assert attrs[names.USAGE_INPUT_TOKENS] == 4500


async def test_async_break_and_close(telemetry: Telemetry, aclaude: anthropic.AsyncAnthropic) -> None:
    stream = await aclaude.messages.create(model=MODEL, max_tokens=500, messages=MESSAGES, stream=True,
                                           extra_headers=usage_headers())
    async for _event in stream:
        break
    await stream.close()
    assert len(telemetry.spans()) == 1


async def test_async_garbage_collected(telemetry: Telemetry, aclaude: anthropic.AsyncAnthropic) -> None:
    stream = await aclaude.messages.create(model=MODEL, max_tokens=500, messages=MESSAGES, stream=True,
                                           extra_headers=usage_headers())
    del stream
    gc.collect()
    assert len(telemetry.spans()) == 1


async def test_async_stream_helper_exception(telemetry: Telemetry, aclaude: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(ZeroDivisionError):
        async with aclaude.messages.stream(model=MODEL, max_tokens=500, messages=MESSAGES,
                                           extra_headers=usage_headers()) as stream:
            async for _text in stream.text_stream:
                1 / 0  # noqa: B018
    assert len(telemetry.spans()) == 1


def test_a_finished_stream_leaves_no_hook_on_its_response(telemetry: Telemetry, claude: anthropic.Anthropic) -> None:
    """genai-meter's hook on the HTTP response's `close` holds the response: it is removed when the
    call ends, so it adds no reference cycle to what the SDK leaves for the garbage collector."""
    stream = _stream(claude)
    for _event in stream:
        pass
    assert "close" not in vars(stream.response)
    assert (telemetry.only_span().attributes or {})[names.COST_USD] == pytest.approx(EXPECTED_COST, abs=1e-9)


LONG = "300"  # text deltas: more events than a stream observer keeps (`KEPT_LIMIT`), some read and let go of early


def test_a_long_stream_read_to_its_end_is_exact(telemetry: Telemetry, claude: anthropic.Anthropic) -> None:
    events = list(_stream(claude, **{"x-fake-chunks": LONG}))
    assert len(events) > 300
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.COST_USD] == pytest.approx(EXPECTED_COST, abs=1e-9)
    assert names.USAGE_ESTIMATED not in attrs


def test_a_long_stream_cut_short_estimates_from_all_its_text(telemetry: Telemetry, claude: anthropic.Anthropic) -> None:
    with _stream(claude, **{"x-fake-chunks": LONG}) as stream:
        for event in stream:
            if event.type == "content_block_stop":
                break
    attrs = telemetry.only_span().attributes or {}
    characters = sum(len(f"chunk{index} ") for index in range(300))  # the early deltas' text too
    assert attrs[names.USAGE_OUTPUT_TOKENS] == (characters + 3) // 4
    assert attrs[names.USAGE_INPUT_TOKENS] == 4500 and attrs[names.USAGE_ESTIMATED] is True
