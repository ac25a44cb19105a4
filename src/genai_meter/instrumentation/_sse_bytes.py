"""Metering a server-sent-event stream from the raw bytes of its HTTP response, before the SDK
decodes them.

The OpenAI SDK turns each event into an object; reading those objects, or even each event's text,
costs the meter a few µs an event. Everything a meter needs is in the bytes the HTTP
response yields, usually several events at a time. So the response's `iter_bytes` / `aiter_bytes`
(what the SDK's own event decoder reads) is replaced by a filter that hands each run of complete
events to a `ByteMeter`, which reads it with a few C-level searches and may change it (cut out an
event genai-meter asked for) before the SDK sees it. A partial event waits for the rest of its
bytes, so an event is never cut in two.

The call ends once on every exit path, as `_streams` does for item streams: the body read to its
end, the response closed (hooked; a close that the SDK makes while an exception propagates ends the
call with that exception, the one the app gets), the filter closed unread, or the stream garbage
collected.
"""

from __future__ import annotations

import functools
import json
import sys
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from types import SimpleNamespace
from typing import Any

from .._faults import record_fault
from ._streams import StreamEnd, StreamObserver, end_when_collected, hook_close


def _separator(data: bytes) -> bytes:
    """The event separator that the body's first line end shows (empty while none is certain): the
    stream's style (SSE allows LF, CR LF or CR), whose blank line, which ends each event, is then
    found with one search per chunk. Two C-level searches: a regular expression for the line end
    tests each byte up to it (~40 CPU instructions a byte, ~12,000 for an OpenAI chunk)."""
    newline = data.find(b"\n")
    carriage = data.find(b"\r", 0, newline if newline >= 0 else len(data))
    if carriage < 0:
        return b"\n\n" if newline >= 0 else b""
    if carriage + 1 == len(data):
        return b""  # a CR that may be the first half of a CR LF
    return b"\r\n\r\n" if data[carriage + 1] == 0x0A else b"\r\r"


def contains(data: bytes, part: bytes) -> bool:
    """`part in data`, without the exception that `in` makes: CPython's `bytes.__contains__` first
    tries its operand as an integer (`65 in b"A"`), and for bytes that fails with a TypeError that it
    formats and then clears (~1,900 CPU instructions, where the search itself costs a few hundred)."""
    return data.find(part) >= 0


def _data(event: bytes, start: int) -> bytes:
    """The text of an event's `data:` line(s), the first of which starts at `start` (-1: none)."""
    if start >= 0 and event.find(b"data:", start + 5) < 0:
        return event[start + 5 :]
    return b"\n".join(line[5:] for line in event.splitlines() if line.startswith(b"data:"))


# `json.loads(text)` is `JSONDecoder.decode`: leading white space skipped, the value read
# (`raw_decode`), only white space allowed after it. `event_json` does the same itself, without the
# two Python layers above `raw_decode` (`loads`, `decode`: ~70 opcodes a call).
_DECODER = json.JSONDecoder()  # (the same defaults as `json.loads`'s decoder)
_WHITE_SPACE = " \t\n\r"  # JSON's


def event_json(event: bytes) -> Any:
    """The JSON of an event's `data:` line(s), or None (where `json.loads` would raise ValueError)."""
    # (one `data:` in the event, the usual case: what follows it, found by a split, where two
    # `find`s with their arguments parsed into a tuple cost ~2 times as much)
    parts = event.split(b"data:")
    body = parts[1] if len(parts) == 2 else _data(event, event.find(b"data:"))
    try:  # (SSE is UTF-8: decoded here, the encoding of bytes need not be detected)
        text = body.decode()
        value, end = _DECODER.raw_decode(text, len(text) - len(text.lstrip(_WHITE_SPACE)))
    except ValueError:  # not UTF-8 (a UnicodeDecodeError), or not JSON
        return None
    return None if text[end:].strip(_WHITE_SPACE) else value  # (not white space: more than one value)


class ByteMeter(StreamObserver):
    """Reads a stream's body in runs of complete events; subclasses say what to look for.

    The event separator is learnt from the body's first line end, so each chunk costs one search for
    it; `learn` then looks at the first events until it says it has what it needs.
    """

    __slots__ = ("broken", "learned", "pending", "separator")

    def __init__(self, call: Any) -> None:
        super().__init__(call)
        self.pending = b""  # the start of an event whose end has not arrived yet
        self.separator = b""
        self.learned = False
        self.broken = False  # a fault of ours: pass the bytes on as they come, read nothing more

    def learn(self, region: bytes) -> bool:
        """Read the stream's style from its first complete events (subclasses add their patterns);
        False while `region` does not show it yet (only comments, say): the next region is offered."""
        return True

    def read(self, region: bytes) -> bytes:
        """Read a run of complete events; return what the SDK gets instead (usually `region`)."""
        return region

    def event_bounds(self, data: bytes, inside: int) -> tuple[int, int]:
        """The start and end (its blank line included) of the event around position `inside`."""
        separator = self.separator
        start = data.rfind(separator, 0, inside)
        end = data.find(separator, inside)
        return 0 if start < 0 else start + len(separator), len(data) if end < 0 else end + len(separator)

    def feed(self, chunk: bytes) -> bytes:
        """Read one chunk of the body; return the complete events in it (and in what was pending)."""
        if self.broken:
            return chunk
        data = self.pending + chunk if self.pending else chunk
        separator = self.separator
        if not separator:
            separator = self.separator = _separator(data)
        # (where the last complete event ends: one search per chunk, of every stream)
        cut = data.rfind(separator) if separator else -1
        if cut < 0:
            self.pending = data
            return b""
        cut += len(separator)
        if cut == len(data):
            region, rest = data, b""
        else:
            region, rest = data[:cut], data[cut:]
        if not self.learned:
            self.learned = self.learn(region)
        passed = self.read(region)
        self.pending = rest  # only now: if `read` fails, `pending` + `chunk` are still all the bytes
        return passed

    def flush(self) -> bytes:
        """The bytes left at the end of the body (an event without its closing blank line)."""
        rest, self.pending = self.pending, b""
        if not rest or self.broken:
            return rest
        if not self.separator:
            self.separator = _separator(rest) or b"\n\n"
        if not self.learned:
            self.learned = self.learn(rest)
        return self.read(rest)


def _item(values: dict[str, Any]) -> SimpleNamespace:
    return SimpleNamespace(**values)


class EventItemMeter(ByteMeter):
    """Hands each event of the body, decoded, to an item observer (`observe` reads attributes, as of
    the SDK's event objects), and passes the bytes on unchanged.

    For a raw streamed response (`with_raw_response`, `with_streaming_response`): the app may read
    its lines or bytes (`iter_lines()`, as the SDKs' READMEs show) and never the SDK's `Stream`,
    so the stream is metered where both ways go through, its HTTP response's bytes. Every event is
    decoded, which costs what the SDK's own parsing would; the plain call path meters the SDK's
    items instead."""

    __slots__ = ("observer",)

    def __init__(self, observer: StreamObserver) -> None:
        super().__init__(observer.call)
        self.observer = observer

    def read(self, region: bytes) -> bytes:
        observer = self.observer
        for event in region.split(self.separator):
            start = event.find(b"data:")
            if start < 0:
                continue
            try:
                item = json.loads(_data(event, start).decode(), object_hook=_item)
            except ValueError:  # (a UnicodeDecodeError too) not JSON: the SDK reports it, if it reads it
                continue
            observer.observe(item)
        return region

    def finish(self, error: BaseException | None) -> None:
        self.observer.finish(error)


class _End(StreamEnd):
    """Ends the call once (see `StreamEnd`). A close that the SDK makes while an exception
    propagates out of its own stream iterator (a malformed event, a broken connection) ends the call
    with that exception: the one the app gets, since the SDK turns transport errors into its own. An
    exception of the app's own code (a `with stream:` left by it, or one it is handling in an
    `except` block while it reads the stream) is not the call's error."""

    __slots__ = ("sdk_iterator",)

    def __init__(self, observer: StreamObserver, sdk_iterator: Any) -> None:
        # (`StreamEnd`'s fields set here, not through its `__init__`: one is made for every stream)
        self.observer = observer
        self.reading = False
        self.collection = None
        self.generator = None
        self.hooks = []
        self.sdk_iterator: weakref.ref[Any] | None = weakref.ref(sdk_iterator) if sdk_iterator is not None else None

    def error_at_close(self) -> BaseException | None:
        # Inside a generator, `sys.exc_info()` falls back to the exception its *caller* is handling
        # when the generator itself handles none (the SDK's iterator ending normally, read inside the
        # app's `except` block): only an exception that went through the SDK's iterator (raised in
        # it, from the bytes below it, or thrown into it) is the stream's.
        # A cancellation or an interrupt that went through is the call's error too, as on every other
        # path; a GeneratorExit is only the iterator being closed.
        # (The exception is looked at first: none, the usual close, needs no look at the iterator.)
        error = sys.exc_info()[1]
        if error is None or isinstance(error, GeneratorExit):
            return None
        iterator = self.sdk_iterator() if self.sdk_iterator is not None else None
        if iterator is None or not (getattr(iterator, "gi_running", False) or getattr(iterator, "ag_running", False)):
            return None  # not closed from inside the SDK's iterator: the app's exception, if any
        frame = getattr(iterator, "gi_frame", None) or getattr(iterator, "ag_frame", None)
        return error if frame is not None and _went_through(error, frame) else None


def _went_through(error: BaseException, frame: Any) -> bool:
    """Whether `error` was raised in, or propagated through, `frame` (its traceback holds it)."""
    trace = error.__traceback__
    while trace is not None:
        if trace.tb_frame is frame:
            return True
        trace = trace.tb_next
    return False


def _feed_safely(meter: ByteMeter, chunk: bytes) -> bytes:
    try:
        return meter.feed(chunk)
    except Exception as fault:
        return _feed_failed(meter, chunk, fault)


def _feed_failed(meter: ByteMeter, chunk: bytes, fault: Exception) -> bytes:
    """A fault of the meter's own: recorded, and from now on the bytes pass as they come."""
    record_fault("stream.observe", fault)
    meter.broken = True
    meter.read_ahead = False
    rest, meter.pending = meter.pending, b""
    return rest + chunk


def _flush_safely(meter: ByteMeter) -> bytes:
    try:
        return meter.flush()
    except Exception as fault:
        record_fault("stream.observe", fault)
        return b""


class _MeteredChunks:
    """The body's chunks through the meter, for the SDK's SSE decoder (or the app) to read.

    An iterator object, not a generator: the SDK stops reading at `[DONE]` and drops its iterators
    unfinished, and a generator dropped suspended is closed by throwing GeneratorExit into it (an
    exception made and unwound for every stream, ~3,000 CPU instructions); this one is simply freed.
    The call's other ends are the response's close (hooked: the SDK closes it when it stops) and the
    stream's collection. `end.reading` is set around each read of the body, in which httpx closes
    the response at the body's end: that close is not the call's end, the meter has not read all yet.
    """

    __slots__ = ("end", "meter", "source")

    def __init__(self, source: Iterator[bytes], meter: ByteMeter, end: _End) -> None:
        self.source: Iterator[bytes] | None = source  # None: read to its end
        self.meter = meter
        self.end = end

    def __iter__(self) -> _MeteredChunks:
        return self

    def __next__(self) -> bytes:
        source = self.source
        meter = self.meter
        end = self.end
        while source is not None:
            end.reading = True
            try:
                chunk = next(source, None)  # (an HTTP body's chunks are bytes, never None)
                if chunk is None:
                    self.source = None
                    rest = _flush_safely(meter)
                    if rest:
                        return rest
                    break
                try:  # (`_feed_safely` written out: a call less for each chunk)
                    passed = meter.feed(chunk)
                except Exception as fault:
                    passed = _feed_failed(meter, chunk, fault)
                # the meter wants what follows before this is handed over (OpenAI's usage event): it
                # says so until the next complete event has arrived, in as many chunks as that takes
                while meter.read_ahead and (following := next(source, None)) is not None:
                    passed += _feed_safely(meter, following)
            finally:
                end.reading = False
            if passed:
                return passed
        end()
        raise StopIteration


async def _read(source: AsyncIterator[bytes], end: _End) -> bytes | None:
    """The next chunk, or None at the end; `end.reading` says a read is in progress meanwhile."""
    end.reading = True
    try:
        return await source.__anext__()
    except StopAsyncIteration:
        return None
    finally:
        end.reading = False


async def _async_chunks(source: AsyncIterator[bytes], meter: ByteMeter, end: _End) -> AsyncIterator[bytes]:
    try:
        while (chunk := await _read(source, end)) is not None:
            passed = _feed_safely(meter, chunk)
            while meter.read_ahead and (following := await _read(source, end)) is not None:
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


def meter_response_bytes(stream: Any, meter: ByteMeter, is_async: bool) -> bool:
    """Meter an SDK stream through its HTTP response's bytes; False when it has no SSE response to
    hook (the caller then meters the SDK's items instead)."""
    response = getattr(stream, "response", None)
    name = _BYTES_READS[is_async]
    original: Callable[..., Any] | None = getattr(response, name, None)
    if original is None or not callable(original):
        return False
    if not _is_event_stream(getattr(response, "headers", None)):
        return False  # not SSE (a server that labels its stream otherwise): the SDK's items are read
    end = _End(meter, getattr(stream, "_iterator", None))
    if is_async:

        def async_chunks(*args: Any, **kwargs: Any) -> AsyncIterator[bytes]:
            return _async_chunks(original(*args, **kwargs), meter, end)

        end.hook(response, name, async_chunks)
    else:

        def chunks(*args: Any, **kwargs: Any) -> Iterator[bytes]:
            return _MeteredChunks(original(*args, **kwargs), meter, end)

        end.hook(response, name, chunks)
    _end_on_close_or_collection(stream, response, end, is_async)
    return True


def _end_on_close_or_collection(stream: Any, response: Any, end: _End, is_async: bool) -> None:
    """The byte-metered call also ends when the response is closed, and when the stream is garbage
    collected unread (the other exits go through the filter itself)."""
    hook_close(response, "aclose" if is_async else "close", end, is_async)
    end_when_collected(stream, end)


def meter_stream_bytes(stream: Any, meter: ByteMeter, is_async: bool) -> bool:
    """Meter an SDK stream through the bytes its own SSE decoder reads (OpenAI's `Stream._decoder`,
    which the stream alone holds): the decoder is wrapped, not the response's `iter_bytes`, so there
    is nothing to undo when the call ends. False when the stream has no such decoder or its response
    is not SSE (the caller then tries `meter_response_bytes`, or meters the SDK's items).

    Only for a stream the app reads through the SDK: the app of a raw response may read the
    response's lines itself, which only `meter_response_bytes` sees."""
    decoder = getattr(stream, "_decoder", None)
    response = getattr(stream, "response", None)
    if decoder is None or response is None or not callable(getattr(decoder, _BYTES_READS[is_async], None)):
        return False
    if not _is_event_stream(getattr(response, "headers", None)):
        return False
    end = _End(meter, getattr(stream, "_iterator", None))
    stream._decoder = _MeteredDecoder(decoder, meter, end)
    _end_on_close_or_collection(stream, response, end, is_async)
    return True


# The method that reads a body's bytes, on an HTTP response and on an SDK's SSE decoder alike.
_BYTES_READS = {False: "iter_bytes", True: "aiter_bytes"}


class _MeteredDecoder:
    """Stands in for an SDK stream's SSE decoder: hands it the response's bytes through the meter.

    (With `__getattr__`, every attribute read of it goes through the type's generic hook, never a
    specialised one: it holds what it needs in one field, read once.)"""

    __slots__ = ("parts",)

    def __init__(self, decoder: Any, meter: ByteMeter, end: _End) -> None:
        self.parts = (decoder, meter, end)

    def iter_bytes(self, iterator: Iterator[bytes]) -> Any:
        decoder, meter, end = self.parts
        return decoder.iter_bytes(_MeteredChunks(iterator, meter, end))

    def aiter_bytes(self, iterator: AsyncIterator[bytes]) -> Any:
        decoder, meter, end = self.parts
        return decoder.aiter_bytes(_async_chunks(iterator, meter, end))

    def __getattr__(self, name: str) -> Any:  # anything else the SDK may ask of its decoder
        return getattr(self.parts[0], name)


def _is_event_stream(headers: Any) -> bool:
    """Whether a response's `content-type` is `text/event-stream`.

    httpx's `Headers.get` works in Python through every header, decoding and joining every value of
    the key (~60 opcodes with two headers, ~7 more for each other one); its `_list` of (raw key,
    lower-case key, value) is read instead, up to the first `content-type`, whose value starts with
    the media type exactly when the joined values do (a media type has no `,`), in bytes as in
    text (it is ASCII). Any other headers object (a mapping) is asked with `get`."""
    kind: object = type(headers)
    if _httpx_headers(kind):
        try:
            for _raw, key, value in headers._list:
                if key == b"content-type":
                    return bool(value.startswith(b"text/event-stream"))
            return False
        except (AttributeError, TypeError, ValueError):  # httpx's internals changed: its `get` still works
            pass
    content_type = headers.get("content-type", "") if headers is not None else ""
    return str(content_type).startswith("text/event-stream")


@functools.cache
def _httpx_headers(kind: object) -> bool:
    """Whether `kind` is the `Headers` class of httpx (or of httpx2, its fork that the OpenAI SDK uses)."""
    module_name = getattr(kind, "__module__", "")
    return module_name in ("httpx", "httpx2") and getattr(sys.modules.get(module_name), "Headers", None) is kind
