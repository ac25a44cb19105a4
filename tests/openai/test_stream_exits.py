"""A stream broken off in any way still ends exactly one span, with what was seen."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest
from opentelemetry.instrumentation.utils import suppress_instrumentation

from genai_meter import names

from ..conftest import Telemetry
from .test_chat import EXPECTED_COST, MESSAGES, async_client, client, usage_headers


def _stream(fake_provider: Any, chunks: int = 5, **wire: str) -> Any:
    return client(fake_provider).chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        extra_headers=usage_headers(**{"x-fake-chunks": str(chunks), **wire}),
    )


async def _async_stream(aclient: Any, **wire: str) -> Any:
    return await aclient.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=usage_headers(**wire)
    )


def test_break_after_first_chunk(telemetry: Telemetry, fake_provider: Any) -> None:
    stream = _stream(fake_provider)
    for _chunk in stream:
        break
    del stream, _chunk
    gc.collect()
    span = telemetry.only_span()
    assert span.end_time is not None
    assert (span.attributes or {})[names.USAGE_ESTIMATED] is True


@pytest.mark.parametrize(
    "wire",
    [{}, {"x-fake-write-bytes": "7"}, {"x-fake-write-bytes": "64"}],
    ids=["whole-events", "7-byte-pieces", "64-byte-pieces"],
)
def test_break_at_finish_reason_still_gets_exact_usage(
    telemetry: Telemetry, fake_provider: Any, wire: dict[str, str]
) -> None:
    """The usage event that follows the finish reason is read ahead before the finish chunk is handed
    over, however many HTTP chunks it arrives in."""
    with _stream(fake_provider, **wire) as stream:
        for chunk in stream:
            if chunk.choices[0].finish_reason:
                break
    attrs = telemetry.only_span().attributes or {}
    assert names.USAGE_ESTIMATED not in attrs
    assert attrs[names.COST_USD] == pytest.approx(EXPECTED_COST, abs=1e-9)


async def test_async_break_at_finish_reason_with_the_usage_event_in_pieces(
    telemetry: Telemetry, fake_provider: Any
) -> None:
    async with async_client(fake_provider) as aclient:
        stream = await _async_stream(aclient, **{"x-fake-chunks": "3", "x-fake-write-bytes": "7"})
        async with stream:
            async for chunk in stream:
                if chunk.choices[0].finish_reason:
                    break
    attrs = telemetry.only_span().attributes or {}
    assert names.USAGE_ESTIMATED not in attrs
    assert attrs[names.COST_USD] == pytest.approx(EXPECTED_COST, abs=1e-9)


def test_close(telemetry: Telemetry, fake_provider: Any) -> None:
    stream = _stream(fake_provider)
    next(iter(stream))
    stream.close()
    assert len(telemetry.spans()) == 1


def test_exception_in_consumer_with_context_manager(telemetry: Telemetry, fake_provider: Any) -> None:
    with pytest.raises(ZeroDivisionError), _stream(fake_provider) as stream:
        for _chunk in stream:
            1 / 0  # noqa: B018
    attrs = telemetry.only_span().attributes or {}
    # the app's own error is not the call's: the provider answered
    assert attrs[names.OUTCOME] == names.OUTCOME_OK
    assert names.ERROR_TYPE not in attrs


def test_garbage_collected_before_reading(telemetry: Telemetry, fake_provider: Any) -> None:
    stream = _stream(fake_provider)
    assert telemetry.spans() == []
    del stream
    gc.collect()
    assert len(telemetry.spans()) == 1


def test_exhausted_twice_counts_once(telemetry: Telemetry, fake_provider: Any) -> None:
    stream = _stream(fake_provider)
    list(stream)
    stream.close()
    del stream
    gc.collect()
    assert len(telemetry.spans()) == 1
    assert telemetry.total(names.REQUESTS.otel_name) == 1


def test_provider_drops_the_stream(telemetry: Telemetry, fake_provider: Any) -> None:
    stream = client(fake_provider).chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        extra_headers=usage_headers(**{"x-fake-chunks": "6", "x-fake-drop-after": "2"}),
    )
    with pytest.raises(Exception):  # noqa: B017 - whatever the SDK raises for a broken connection
        list(stream)
    span = telemetry.only_span()
    assert (span.attributes or {})[names.OUTCOME] == names.OUTCOME_ERROR


async def test_async_break_and_aclose(telemetry: Telemetry, fake_provider: Any) -> None:
    async with async_client(fake_provider) as aclient:
        stream = await _async_stream(aclient)
        async for _chunk in stream:
            break
        await stream.close()
    assert len(telemetry.spans()) == 1


async def test_async_garbage_collected(telemetry: Telemetry, fake_provider: Any) -> None:
    async with async_client(fake_provider) as aclient:
        stream = await _async_stream(aclient)
        del stream
        gc.collect()
    assert len(telemetry.spans()) == 1


async def test_async_exception_in_consumer_is_not_the_calls_error(telemetry: Telemetry, fake_provider: Any) -> None:
    async with async_client(fake_provider) as aclient:
        stream = await _async_stream(aclient)
        with pytest.raises(ZeroDivisionError):
            async with stream:
                async for _chunk in stream:
                    1 / 0  # noqa: B018
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.OUTCOME] == names.OUTCOME_OK
    assert names.ERROR_TYPE not in attrs


async def test_async_provider_drops_the_stream(telemetry: Telemetry, fake_provider: Any) -> None:
    async with async_client(fake_provider) as aclient:
        stream = await _async_stream(aclient, **{"x-fake-chunks": "6", "x-fake-drop-after": "2"})
        with pytest.raises(Exception) as raised:  # whatever the SDK raises for a broken connection
            async for _chunk in stream:
                pass
    attrs = telemetry.only_span().attributes or {}
    assert attrs[names.OUTCOME] == names.OUTCOME_ERROR
    assert attrs[names.ERROR_TYPE] == type(raised.value).__qualname__


@pytest.fixture
def no_gc() -> Any:
    """The cyclic garbage collector paused: what is freed is freed by reference counting alone."""
    gc.collect()
    gc.disable()
    yield
    gc.enable()


@pytest.mark.parametrize("exit_path", ["exhausted", "break-in-with", "close"])
def test_a_finished_stream_leaves_its_response_in_no_reference_cycle(
    telemetry: Telemetry, fake_provider: Any, no_gc: None, exit_path: str
) -> None:
    """genai-meter's hooks on the HTTP response (its `iter_bytes` and `close`) hold the response;
    they are removed when the call ends, so a stream read to its end frees its response (its body
    and all it holds) as soon as the app drops it, as uninstrumented, not at the next full GC pass.
    (A stream left early keeps it in the SDK's own cycle, its suspended generator, either way.)"""
    stream = _stream(fake_provider)
    response = weakref.ref(stream.response)
    if exit_path == "exhausted":
        for _chunk in stream:
            pass
    elif exit_path == "break-in-with":
        with stream:
            for _chunk in stream:
                break
    else:
        next(iter(stream))
        stream.close()
    assert not {"iter_bytes", "close"} & set(vars(stream.response))
    del stream
    if exit_path == "exhausted":
        assert (response() is None) == _sdk_frees_an_exhausted_streams_response(fake_provider)
    assert telemetry.only_span().end_time is not None


def _sdk_frees_an_exhausted_streams_response(fake_provider: Any) -> bool:
    """Whether the SDK alone frees a stream's response by reference counting once it is read to its
    end (openai 3 does; openai 2 keeps it in a cycle of its own)."""
    with suppress_instrumentation():
        stream = _stream(fake_provider)
        response = weakref.ref(stream.response)
        for _chunk in stream:
            pass
        del stream
    return response() is None


async def test_a_finished_async_stream_leaves_no_hook_on_its_response(
    telemetry: Telemetry, fake_provider: Any
) -> None:
    async with async_client(fake_provider) as aclient:
        stream = await _async_stream(aclient)
        async for _chunk in stream:
            pass
        assert not {"aiter_bytes", "aclose"} & set(vars(stream.response))
    assert (telemetry.only_span().attributes or {})[names.COST_USD] == pytest.approx(EXPECTED_COST, abs=1e-9)


def test_a_plain_stream_is_metered_through_its_decoder_not_its_response(
    telemetry: Telemetry, fake_provider: Any
) -> None:
    """A stream the app reads through the SDK is metered where its own SSE decoder reads the bytes
    (the decoder the stream alone holds): the response's `iter_bytes` is never replaced, so there is
    nothing to undo at the end. (A raw response's app may read the response itself: that one is
    hooked.)"""
    stream = _stream(fake_provider)
    assert type(stream._decoder).__name__ == "_MeteredDecoder"
    for _chunk in stream:
        assert "iter_bytes" not in vars(stream.response)
    assert (telemetry.only_span().attributes or {})[names.COST_USD] == pytest.approx(EXPECTED_COST, abs=1e-9)


def test_an_ended_stream_leaves_nothing_to_do_at_its_collection(telemetry: Telemetry, fake_provider: Any) -> None:
    """A stream's end at garbage collection is held only until its call ends another way: a stream
    read to the end and still held by the app keeps no callback registered, and one never read is
    ended by its collection."""
    from genai_meter.instrumentation import _streams

    before = set(_streams._collection_ends)  # (another test's stream may still be alive)
    held = [_stream(fake_provider) for _ in range(3)]
    unread = _stream(fake_provider)
    assert len(_streams._collection_ends - before) == 4
    for stream in held:
        for _chunk in stream:
            pass
    assert [ref() for ref in _streams._collection_ends - before] == [unread]
    assert len(telemetry.spans()) == 3
    del unread
    gc.collect()
    assert not _streams._collection_ends - before
    assert len(telemetry.spans()) == 4
    assert len(held) == 3  # (held to the end: their calls ended by reading, not by collection)
