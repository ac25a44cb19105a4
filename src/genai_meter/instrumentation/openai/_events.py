"""Metering a Chat Completions stream from its raw bytes, before the SDK decodes them.

The SDK turns each event into a chunk object; reading those objects, or even each event's text,
costs the meter a few µs an event. Everything the meter needs is in the bytes the HTTP response
yields, usually several events at a time: how many content events there were, which one carries
the finish reason, and the usage-only event (taken out here, before the SDK sees it, when
genai-meter injected `include_usage`). So the response's `iter_bytes` (what the SDK's own event
decoder reads) is replaced by a filter that works on whole byte chunks with a few C-level searches
per chunk; JSON is parsed for the usage event only (or, without one, for the first event).

The filter passes on complete events only (a partial one waits for the rest of its bytes), so the
usage event can be cut out whole. Without usage, output tokens are estimated as one per content
event (OpenAI streams one token a chunk), input from the prompt's length; the call is marked
estimated.
"""

from __future__ import annotations

import json
import re
import sys
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from ..._call import Call
from ..._faults import record_fault
from ..._usage import Usage, estimate_tokens, openai_chat_usage
from .._streams import StreamEnd, StreamObserver, hook_close

_FINISH_REASON = re.compile(rb'"finish_reason":\s*"([^"\\]+)"')


class _Wire:
    """The byte patterns of one stream's style: its event separator (SSE allows LF, CR LF or CR
    line ends) and its JSON spacing (OpenAI sends compact JSON; some servers put a space after `:`
    and `,`). Read once from the first bytes, so each chunk costs one search per pattern."""

    __slots__ = ("content", "finished", "no_choices", "separator", "usage_null")

    def __init__(self, first: bytes) -> None:
        self.separator = b"\r\n\r\n" if b"\r\n" in first else b"\r\r" if b"\r" in first else b"\n\n"
        spaced = b'"object": ' in first or b'"id": ' in first
        self.content = b"data: {" if b"data: " in first else b"data:{"
        self.no_choices = b'"choices": []' if spaced else b'"choices":[]'
        self.finished = b'"finish_reason": "' if spaced else b'"finish_reason":"'
        self.usage_null = b', "usage": null' if spaced else b',"usage":null'

    def event_end(self, data: bytes, before: int | None = None) -> int:
        """Where the last complete event in `data[:before]` ends (0 when there is none)."""
        at = data.rfind(self.separator, 0, len(data) if before is None else before)
        return at + len(self.separator) if at >= 0 else 0

    def event_bounds(self, data: bytes, inside: int) -> tuple[int, int]:
        """The start and end (its blank line included) of the event around position `inside`."""
        end = data.find(self.separator, inside)
        return self.event_end(data, inside), len(data) if end < 0 else end + len(self.separator)


def _event_end_any(data: bytes) -> int:
    """Where the last complete event ends, before the stream's style is known."""
    ends = [at + len(sep) for sep in (b"\n\n", b"\r\n\r\n", b"\r\r") if (at := data.rfind(sep)) >= 0]
    return max(ends, default=0)


def _event_json(event: bytes) -> Any:
    """The JSON of an event's `data:` line(s), or None."""
    if event.startswith(b"data:") and event.count(b"data:") == 1:
        body = event[5:]
    else:
        body = b"\n".join(line[5:] for line in event.splitlines() if line.startswith(b"data:"))
    try:
        return json.loads(body)
    except ValueError:
        return None


class ChatEventMeter(StreamObserver):
    """What one Chat Completions stream has shown so far, read from its bytes."""

    __slots__ = (
        "content_events",
        "finish_event",
        "first_event",
        "injected",
        "pending",
        "prompt_chars",
        "usage_payload",
        "wire",
    )

    def __init__(self, call: Call, injected: bool, prompt_chars: int) -> None:
        super().__init__(call)
        self.injected = injected
        self.prompt_chars = prompt_chars
        self.first_event: bytes | None = None
        self.finish_event: bytes | None = None
        self.usage_payload: dict[str, Any] | None = None
        self.content_events = 0
        self.pending = b""  # the start of an event whose end has not arrived yet
        self.wire: _Wire | None = None

    def feed(self, chunk: bytes) -> bytes:
        """Read one chunk of the body; return the complete events in it (and in what was pending)
        for the SDK, without the injected usage event and the `"usage": null` it adds elsewhere."""
        data = self.pending + chunk if self.pending else chunk
        wire = self.wire
        if wire is None:
            cut = _event_end_any(data)
            if cut == 0:
                self.pending = data
                return b""
            wire = self.wire = _Wire(data[:cut])
        else:
            cut = wire.event_end(data)
            if cut == 0:
                self.pending = data
                return b""
        if cut == len(data):
            self.pending = b""
            return self._read(data, wire)
        self.pending = data[cut:]
        return self._read(data[:cut], wire)

    def flush(self) -> bytes:
        """The bytes left at the end of the body (an event without its closing blank line)."""
        rest, self.pending = self.pending, b""
        if not rest:
            return b""
        return self._read(rest, self.wire or _Wire(rest))

    def _read(self, region: bytes, wire: _Wire) -> bytes:
        if self.first_event is None:
            self.first_event = region[: wire.event_bounds(region, 0)[1]]
        self.content_events += region.count(wire.content)
        if wire.no_choices in region:
            region = self._usage_events(region, wire)
        if self.injected:
            # With `include_usage` every chunk says `"usage": null`; without it (what the caller asked
            # for) the key is absent. Removed, so the caller's chunks are the same as uninstrumented.
            region = region.replace(wire.usage_null, b"")
        finished = region.rfind(wire.finished)
        if finished >= 0:
            start, end = wire.event_bounds(region, finished)
            self.finish_event = region[start:end]
            # the usage event genai-meter asked for comes next: read it before handing this over
            self.read_ahead = self.injected and self.usage_payload is None
        return region

    def _usage_events(self, region: bytes, wire: _Wire) -> bytes:
        """Find the events with no choices; take the usage from them (cut out when injected)."""
        at = region.find(wire.no_choices)
        while at >= 0:
            start, end = wire.event_bounds(region, at)
            self.content_events -= 1  # counted as content; it is not
            payload = _event_json(region[start:end])
            if isinstance(payload, dict) and payload.get("choices") == [] and payload.get("usage"):
                self.usage_payload = payload
                if self.injected:
                    region = region[:start] + region[end:]
                    end = start
            at = region.find(wire.no_choices, end)
        return region

    def finish(self, error: BaseException | None) -> None:
        usage_payload = self.usage_payload
        raw_usage = usage_payload.get("usage") if usage_payload is not None else None
        usage = openai_chat_usage(raw_usage)
        if usage is None:
            usage = Usage(
                input_tokens=estimate_tokens(self.prompt_chars), output_tokens=self.content_events, estimated=True
            )
        ids = usage_payload if usage_payload is not None else _event_json(self.first_event or b"")
        ids = ids if isinstance(ids, dict) else {}
        reasons = tuple(r.decode() for r in _FINISH_REASON.findall(self.finish_event or b""))
        cost = raw_usage.get("cost") if isinstance(raw_usage, dict) else None
        self.call.finish(
            usage=usage,
            response_model=ids.get("model") if isinstance(ids.get("model"), str) else None,
            response_id=ids.get("id") if isinstance(ids.get("id"), str) else None,
            error=error,
            provider_cost_usd=float(cost)
            if isinstance(cost, int | float) and not isinstance(cost, bool) and cost >= 0
            else None,
            finish_reasons=reasons or None,
        )


class _End(StreamEnd):
    """Ends the call once (see `StreamEnd`). A close that the SDK makes while an exception
    propagates (a malformed event, a broken connection) ends the call with that exception: the
    one the app gets, since the SDK turns transport errors into its own."""

    __slots__ = ()

    def on_close(self) -> None:
        generator = self.generator() if self.generator is not None else None
        if self.reading or (generator is not None and generator.gi_running):
            return  # httpx closes the response itself when the body ends, inside our read
        error = sys.exc_info()[1]
        self(error if isinstance(error, Exception) else None)


def _feed_safely(meter: ChatEventMeter, chunk: bytes) -> bytes:
    try:
        return meter.feed(chunk)
    except Exception as fault:
        record_fault("stream.observe", fault)
        meter.injected = False  # hide nothing more: the SDK gets the bytes as they came
        rest, meter.pending = meter.pending, b""
        return rest + chunk


def _flush_safely(meter: ChatEventMeter) -> bytes:
    try:
        return meter.flush()
    except Exception as fault:
        record_fault("stream.observe", fault)
        return b""


def _chunks(source: Iterator[bytes], meter: ChatEventMeter, end: _End) -> Iterator[bytes]:
    try:
        for chunk in source:
            passed = _feed_safely(meter, chunk)
            # after a finish reason: read until the usage event is in (or the body ends)
            while meter.read_ahead and (following := next(source, None)) is not None:
                meter.read_ahead = False
                passed += _feed_safely(meter, following)
            if passed:
                yield passed
        rest = _flush_safely(meter)
        if rest:
            yield rest
    except GeneratorExit:
        end()  # closed unread (a `break`, then garbage collection)
        raise
    end()


async def _read(source: AsyncIterator[bytes], end: _End) -> bytes | None:
    """The next chunk, or None at the end; `end.reading` says a read is in progress meanwhile."""
    end.reading = True
    try:
        return await source.__anext__()
    except StopAsyncIteration:
        return None
    finally:
        end.reading = False


async def _async_chunks(source: AsyncIterator[bytes], meter: ChatEventMeter, end: _End) -> AsyncIterator[bytes]:
    try:
        while (chunk := await _read(source, end)) is not None:
            passed = _feed_safely(meter, chunk)
            while meter.read_ahead and (following := await _read(source, end)) is not None:
                meter.read_ahead = False
                passed += _feed_safely(meter, following)
            if passed:
                yield passed
        rest = _flush_safely(meter)
        if rest:
            yield rest
    except GeneratorExit:
        end()
        raise
    end()


def meter_chat_events(stream: Any, meter: ChatEventMeter, is_async: bool) -> bool:
    """Meter an SDK Chat Completions stream through its response's bytes; False when the stream
    has no response to hook (the caller then meters the chunks instead)."""
    response = getattr(stream, "response", None)
    name = "aiter_bytes" if is_async else "iter_bytes"
    original: Callable[..., Any] | None = getattr(response, name, None)
    if original is None or not callable(original):
        return False
    end = _End(meter)
    if is_async:

        def async_chunks(*args: Any, **kwargs: Any) -> AsyncIterator[bytes]:
            return _async_chunks(original(*args, **kwargs), meter, end)

        setattr(response, name, async_chunks)
        hook_close(response, "aclose", end, True)
    else:

        def chunks(*args: Any, **kwargs: Any) -> Iterator[bytes]:
            generator = _chunks(original(*args, **kwargs), meter, end)
            end.generator = weakref.ref(generator)
            return generator

        setattr(response, name, chunks)
        hook_close(response, "close", end, False)
    weakref.finalize(stream, end)
    return True
