"""Metering a Chat Completions stream from its raw server-sent events.

The SDK turns each event into a chunk object (~50-100 µs each); reading those objects per chunk
costs the meter several µs a chunk as well. Everything the meter needs is in the raw event text:
whether it is the usage-only event (taken out here, before the SDK parses it, when genai-meter
injected `include_usage`), which one carries the finish reason, and how many content events there
were. So the SDK's own event iterator (`Stream._iter_events`, read when the stream is first
iterated) is replaced by one that looks at each event's text with two substring tests; JSON is
parsed only for the first event (ids), the finish event and the usage event.

Without usage, output tokens are estimated as one per content event (OpenAI streams one token a
chunk), input from the prompt's length; the call is marked estimated.
"""

from __future__ import annotations

import json
import sys
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from ..._call import Call
from ..._faults import record_fault
from ..._usage import Usage, estimate_tokens, openai_chat_usage
from .._streams import StreamEnd, StreamObserver, hook_close
from ._observers import provider_cost

_FINISHED = ('"finish_reason":"', '"finish_reason": "')
_NO_CHOICES = ('"choices":[]', '"choices": []')


def _json(data: str | None) -> Any:
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None


class ChatEventMeter(StreamObserver):
    """What one Chat Completions stream has shown so far, read from its event texts."""

    __slots__ = (
        "content_events",
        "finish_data",
        "first_data",
        "injected",
        "prompt_chars",
        "raw_usage",
        "stripped",
    )

    def __init__(self, call: Call, injected: bool, prompt_chars: int) -> None:
        super().__init__(call)
        self.injected = injected
        self.prompt_chars = prompt_chars
        self.first_data: str | None = None
        self.finish_data: str | None = None
        self.raw_usage: Any = None
        self.content_events = 0
        self.stripped: str | None = None  # the last event's text without `"usage": null`

    def see(self, data: str) -> bool:
        """Read one event's text; True when it is the injected usage event (hidden from the SDK)."""
        if self.first_data is None:
            self.first_data = data
        if "[]" in data and (_NO_CHOICES[0] in data or _NO_CHOICES[1] in data):
            payload = _json(data)
            if isinstance(payload, dict) and payload.get("choices") == [] and payload.get("usage"):
                self.raw_usage = payload["usage"]
                return self.injected
            return False
        if data[:1] == "{":
            self.content_events += 1
            if self.injected and '"usage"' in data:
                # With `include_usage` every chunk says `"usage": null`; without it (what the caller
                # asked for) the key is absent. Remove it, so the caller's chunks are the same as
                # uninstrumented (and the SDK has one field less to build per chunk).
                self.stripped = data.replace(',"usage":null', "").replace(', "usage": null', "")
            if _FINISHED[0] in data or _FINISHED[1] in data:
                self.finish_data = data
                # the usage event genai-meter asked for comes next: read it before handing this over
                self.read_ahead = self.injected and self.raw_usage is None
        return False

    def finish(self, error: BaseException | None) -> None:
        first = _json(self.first_data)
        first = first if isinstance(first, dict) else {}
        finished = _json(self.finish_data)
        reasons = None
        if isinstance(finished, dict) and isinstance(finished.get("choices"), list):
            reasons = tuple(
                str(choice["finish_reason"])
                for choice in finished["choices"]
                if isinstance(choice, dict) and choice.get("finish_reason")
            )
        usage = openai_chat_usage(self.raw_usage)
        if usage is None:
            usage = Usage(
                input_tokens=estimate_tokens(self.prompt_chars), output_tokens=self.content_events, estimated=True
            )
        self.call.finish(
            usage=usage,
            response_model=first.get("model") if isinstance(first.get("model"), str) else None,
            response_id=first.get("id") if isinstance(first.get("id"), str) else None,
            error=error,
            provider_cost_usd=provider_cost(self.raw_usage),
            finish_reasons=reasons or None,
        )


class _End(StreamEnd):
    """Ends the call once (see `StreamEnd`). Also: a close that the SDK makes while an exception
    propagates (a malformed event, a broken connection, with the event iterator suspended) ends
    the call with that exception, since here the SDK parses events after this iterator yields them."""

    __slots__ = ()

    def on_close(self) -> None:
        generator = self.generator() if self.generator is not None else None
        if self.reading or (generator is not None and generator.gi_running):
            return
        error = sys.exc_info()[1]
        self(error if isinstance(error, Exception) else None)


def _events(source: Iterator[Any], meter: ChatEventMeter, end: _End) -> Iterator[Any]:
    see = meter.see
    try:
        for sse in source:
            data = sse.data
            try:
                if see(data):
                    continue
            except Exception as fault:
                record_fault("stream.observe", fault)
            if meter.stripped is not None:
                sse._data, meter.stripped = meter.stripped, None
            if meter.read_ahead:
                meter.read_ahead = False
                following = next(source, None)
                if following is not None and not _see_safely(meter, following.data):
                    if meter.stripped is not None:
                        following._data, meter.stripped = meter.stripped, None
                    yield sse
                    sse = following
            yield sse
    except GeneratorExit:
        end()
        raise
    except BaseException as error:
        end(error)
        raise
    end()


async def _async_events(source: AsyncIterator[Any], meter: ChatEventMeter, end: _End) -> AsyncIterator[Any]:
    see = meter.see
    try:
        while True:
            end.reading = True
            try:
                sse = await source.__anext__()
            except StopAsyncIteration:
                break
            finally:
                end.reading = False
            try:
                if see(sse.data):
                    continue
            except Exception as fault:
                record_fault("stream.observe", fault)
            if meter.stripped is not None:
                sse._data, meter.stripped = meter.stripped, None
            if meter.read_ahead:
                meter.read_ahead = False
                end.reading = True
                try:
                    following = await source.__anext__()
                except StopAsyncIteration:
                    following = None
                finally:
                    end.reading = False
                if following is not None and not _see_safely(meter, following.data):
                    if meter.stripped is not None:
                        following._data, meter.stripped = meter.stripped, None
                    yield sse
                    sse = following
            yield sse
    except GeneratorExit:
        end()
        raise
    except BaseException as error:
        end(error)
        raise
    end()


def _see_safely(meter: ChatEventMeter, data: str) -> bool:
    try:
        return meter.see(data)
    except Exception as fault:
        record_fault("stream.observe", fault)
        return False


def meter_chat_events(stream: Any, meter: ChatEventMeter, is_async: bool) -> bool:
    """Meter an SDK Chat Completions stream through its raw events; False when the SDK has no
    `_iter_events` to hook (the caller then meters the chunks instead)."""
    original: Callable[[], Any] | None = getattr(stream, "_iter_events", None)
    if original is None or not callable(original):
        return False
    end = _End(meter)
    if is_async:
        stream._iter_events = lambda: _async_events(original(), meter, end)
        close_name = "aclose"
    else:

        def events() -> Iterator[Any]:
            generator = _events(original(), meter, end)
            end.generator = weakref.ref(generator)
            return generator

        stream._iter_events = events
        close_name = "close"
    response = getattr(stream, "response", None)
    if response is not None:
        hook_close(response, close_name, end, is_async)
    weakref.finalize(stream, end)
    return True
