"""Metering a streamed response without changing what the caller sees.

The SDK's own stream object is kept (so `isinstance`, `.response`, context-manager use and the SDKs'
stream helpers keep working); only its internal iterator is replaced by one that lets a provider
`StreamObserver` see each item, and hide the items genai-meter asked for (the usage-only chunk).

The call must end exactly once on every exit path: exhausted, `break` (the generator is closed),
`close()` / leaving a `with` block (the HTTP response is closed: hooked), an exception in the
provider stream or in the consumer, and garbage collection of a stream never read to the end
(`end_when_collected`). No OTel context is attached across a `yield`.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, cast

from .._call import Call, Outcome
from .._faults import record_fault
from .._usage import Usage, estimate_tokens, estimated_usage

_NOTHING = object()
# The weak references whose callbacks end a stream's call when it is garbage collected (see
# `end_when_collected`); each goes with its stream.
_collection_ends: set[weakref.ref[Any]] = set()


def end_when_collected(stream: Any, end: StreamEnd) -> None:
    """Call `end()` when `stream` is garbage collected, or at the interpreter's exit if it is still
    alive then: what `weakref.finalize(stream, end)` does, without its registry's Python code
    (~70 opcodes a stream). Once the call has ended another way, `end` lets the reference go (no
    callback then)."""
    end.collection = weakref.ref(stream, functools.partial(_collected, end))
    _collection_ends.add(end.collection)


def _collected(end: StreamEnd, ref: weakref.ref[Any]) -> None:
    _collection_ends.discard(ref)
    end()


@atexit.register
def _end_uncollected() -> None:
    """At exit, end the calls of streams still alive (as `weakref.finalize` does)."""
    for ref in list(_collection_ends):
        callback = ref.__callback__
        if callback is not None:
            callback(ref)


class StreamObserver:
    """Sees each streamed item; subclasses read usage, ids and text length for their provider."""

    __slots__ = ("call", "read_ahead")

    def __init__(self, call: Call) -> None:
        self.call = call
        # Set by `observe` when the item after the one just seen should be read before this one is
        # handed over (the usage chunk that follows the final content chunk, so a caller who stops
        # there still gets an exact count). An attribute, not a method: it is checked per item.
        self.read_ahead = False

    def observe(self, item: Any) -> bool:
        """Read one item; return True to hide it from the caller."""
        return False

    def finish(self, error: BaseException | None) -> None:
        """End the call with what was seen."""
        self.call.finish(usage=None, error=error)


class TextStreamObserver(StreamObserver):
    """What every provider's stream observer keeps: the response's model and id, and the prompt's
    and the streamed text's lengths, for an estimate when the stream ends without usage."""

    __slots__ = ("chars", "model", "prompt_chars", "response_id")

    def __init__(self, call: Call, prompt_chars: Callable[[], int]) -> None:
        super().__init__(call)
        self.prompt_chars = prompt_chars  # called only for an estimate: a long prompt is not walked per call
        self.chars = 0
        self.model: str | None = None
        self.response_id: str | None = None

    def received(self) -> bool:
        """Whether any of the response arrived (its id, model or text). A stream that failed before
        that (an error event first, a refused request) was not billed: it gets no estimate."""
        return self.response_id is not None or self.model is not None or self.chars > 0

    def estimate(self) -> Usage:
        """The usage of a stream that reported none, from the text seen."""
        return estimated_usage(self.prompt_chars(), self.chars)

    def end_call(
        self, usage: Usage | None, error: BaseException | None, *, output_incomplete: bool = False, **details: Any
    ) -> None:
        """End the call with the usage read, or an estimate (marked as one) when there was none."""
        self.call.finish(**self.outcome(usage, error, output_incomplete=output_incomplete, **details))

    def outcome(
        self, usage: Usage | None, error: BaseException | None, *, output_incomplete: bool = False, **details: Any
    ) -> Outcome:
        """`Call.finish`'s arguments: the usage read, or an estimate (marked as one) when there was none.

        `output_incomplete`: the stream ended before the provider's final counts, so the output read
        is partial (a placeholder, or none): it becomes the larger of that and an estimate from the
        text seen, and the usage is marked estimated. A stream that failed before any of the
        response arrived ends with its error and no usage.
        """
        if usage is None:
            if error is None or self.received():
                usage = self.estimate()
        elif output_incomplete:
            output = max(usage.output_tokens, estimate_tokens(self.chars))
            usage = dataclasses.replace(usage, output_tokens=output, estimated=True)
        found = {"usage": usage, "response_model": self.model, "response_id": self.response_id, "error": error}
        return cast("Outcome", {**found, **details})


class CollectingObserver(TextStreamObserver):
    """An observer that reads nothing while the stream runs: it keeps each item (never hidden,
    nothing read ahead) and reads them at the end, where a provider's last items say all (Gemini's
    cumulative usage). Past `KEPT_LIMIT` items, `spill` reads and lets go of those kept, so a long
    stream keeps no more than that many alive. Its sync streams are metered by a loop that only
    appends to `kept` (`_collecting_iterator`: a C call an item, where `observe` is a Python one)."""

    __slots__ = ("kept",)
    KEPT_LIMIT = 256

    def __init__(self, call: Call, prompt_chars: Callable[[], int]) -> None:
        super().__init__(call, prompt_chars)
        self.kept: list[Any] = []

    def observe(self, item: Any) -> bool:
        kept = self.kept
        kept.append(item)
        if len(kept) > self.KEPT_LIMIT:
            self.spill()
        return False

    def spill(self) -> None:
        """Read the items kept, then empty `kept` in place (the iterator holds the list)."""
        self.kept.clear()


class StreamEnd:
    """Ends the call once, whoever gets there first.

    The SDK closes the response itself when its stream ends or breaks, from inside the metered
    iterator's read; that close must not end the call before the iterator has seen how it ended
    (an error, or the last items). `reading` says so for async iterators (set around each read);
    for sync ones the generator's own `gi_running` does, at no cost per item.
    """

    __slots__ = ("collection", "generator", "hooks", "observer", "reading")

    def __init__(self, observer: StreamObserver) -> None:
        self.observer = observer
        self.reading = False
        self.collection: weakref.ref[Any] | None = None  # (see `end_when_collected`)
        # A weak reference: `end` is kept by the stream's finalizer, and the generator (through the
        # SDK's own generator) keeps the stream; a strong one would keep the stream alive for ever.
        self.generator: weakref.ref[Any] | None = None
        # (object, attribute, what was there before, genai-meter's replacement), undone at the end
        self.hooks: list[tuple[Any, str, Any, Any]] = []

    def hook(self, target: Any, name: str, replacement: Any) -> None:
        """Set `target.name` (a method of the HTTP response) to `replacement` until the call ends.
        The replacement calls the original bound method, which holds `target`: left in place, it
        would keep the response (its body and all it holds) in a reference cycle, freed only by the
        cyclic garbage collector instead of when the app drops the stream."""
        # an instance attribute set by someone else first (`__dict__`: `vars` parses its arguments into a tuple)
        before = target.__dict__.get(name, _NOTHING)
        setattr(target, name, replacement)
        self.hooks.append((target, name, before, replacement))

    def unhook(self) -> None:
        hooks, self.hooks = self.hooks, []
        for target, name, before, replacement in hooks:
            try:
                if target.__dict__.get(name) is replacement:  # (not replaced again since)
                    if before is _NOTHING:
                        delattr(target, name)
                    else:
                        setattr(target, name, before)
            except Exception as fault:
                record_fault("stream.unhook", fault)

    def on_close(self) -> None:
        generator = self.generator() if self.generator is not None else None
        if self.reading or (generator is not None and generator.gi_running):
            return
        self(self.error_at_close())

    def error_at_close(self) -> BaseException | None:
        """The error to end the call with when the response is closed (none: the metered iterator
        itself sees the errors of an item stream)."""
        return None

    def __call__(self, error: BaseException | None = None) -> None:
        observer = self.observer
        if not observer.call.done:
            try:
                observer.finish(error)
            except Exception as fault:
                record_fault("stream.finish", fault)
                observer.call.finish(usage=None, error=error)
        if self.hooks:
            self.unhook()
        if self.collection is not None:  # (ended: nothing to do when the stream is collected)
            _collection_ends.discard(self.collection)
            self.collection = None


def _metered_iterator(source: Iterator[Any], observer: StreamObserver, end: StreamEnd) -> Iterator[Any]:
    observe = observer.observe
    held: list[Any] = []
    try:
        while True:
            if held:
                item = held.pop()  # observed already, when it was read ahead
            else:
                try:
                    item = next(source)
                except StopIteration:
                    break
                try:
                    if observe(item):
                        continue
                except Exception as fault:
                    record_fault("stream.observe", fault)
                if observer.read_ahead:
                    observer.read_ahead = False
                    following = next(source, _END)
                    if following is _END:
                        yield item
                        break
                    if not _observe_safely(observer, following):
                        held.append(following)
            yield item
    except GeneratorExit:
        end()
        raise
    except BaseException as error:
        end(error)
        raise
    end()


def _collecting_iterator(source: Iterator[Any], observer: CollectingObserver, end: StreamEnd) -> Iterator[Any]:
    """`_metered_iterator` for a `CollectingObserver`: each item is only kept."""
    kept = observer.kept
    limit = observer.KEPT_LIMIT
    try:
        for item in source:
            kept.append(item)
            if len(kept) > limit:
                _spill_safely(observer)
            yield item
    except GeneratorExit:
        end()
        raise
    except BaseException as error:
        end(error)
        raise
    end()


def _sync_iterator(source: Iterator[Any], observer: StreamObserver, end: StreamEnd) -> Iterator[Any]:
    """The metered iterator of a sync stream: a `CollectingObserver`'s only keeps the items."""
    if isinstance(observer, CollectingObserver):
        return _collecting_iterator(source, observer, end)
    return _metered_iterator(source, observer, end)


def _spill_safely(observer: CollectingObserver) -> None:
    try:
        observer.spill()
    except Exception as fault:  # what it held is let go of all the same: memory stays bounded
        record_fault("stream.observe", fault)
        observer.kept.clear()


async def _metered_async_iterator(
    source: AsyncIterator[Any], observer: StreamObserver, end: StreamEnd
) -> AsyncIterator[Any]:
    observe = observer.observe
    held: list[Any] = []
    try:
        while True:
            if held:
                item = held.pop()  # observed already, when it was read ahead
            else:
                end.reading = True
                try:
                    item = await source.__anext__()
                except StopAsyncIteration:
                    break
                finally:
                    end.reading = False
                try:
                    if observe(item):
                        continue
                except Exception as fault:
                    record_fault("stream.observe", fault)
                if observer.read_ahead:
                    observer.read_ahead = False
                    end.reading = True
                    try:
                        following = await source.__anext__()
                    except StopAsyncIteration:
                        following = _END
                    finally:
                        end.reading = False
                    if following is _END:
                        yield item
                        break
                    if not _observe_safely(observer, following):
                        held.append(following)
            yield item
    except GeneratorExit:
        end()
        raise
    except BaseException as error:
        end(error)
        raise
    end()


_END = object()


def _observe_safely(observer: StreamObserver, item: Any) -> bool:
    try:
        return observer.observe(item)
    except Exception as fault:
        record_fault("stream.observe", fault)
        return False


def hook_close(target: Any, method: str, end: StreamEnd, is_async: bool) -> None:
    """Call `end.on_close()` after `target.method()` (the HTTP response's close), sync or async,
    until the call ends."""
    original: Callable[..., Any] | None = getattr(target, method, None)
    if original is None:
        return
    if is_async:

        async def async_closing(*args: Any, **kwargs: Any) -> Any:
            try:
                return await original(*args, **kwargs)
            finally:
                end.on_close()

        end.hook(target, method, async_closing)
    else:

        def closing(*args: Any, **kwargs: Any) -> Any:
            try:
                return original(*args, **kwargs)
            finally:
                end.on_close()

        end.hook(target, method, closing)


def meter_stream(stream: Any, observer: StreamObserver, *, iterator_attr: str = "_iterator") -> Any:
    """Meter a synchronous SDK stream in place and return it."""
    end = StreamEnd(observer)
    try:
        generator = _sync_iterator(getattr(stream, iterator_attr), observer, end)
        end.generator = weakref.ref(generator)
        setattr(stream, iterator_attr, generator)
        response = getattr(stream, "response", None)
        if response is not None:
            hook_close(response, "close", end, is_async=False)
        end_when_collected(stream, end)
    except Exception as fault:
        record_fault("stream.wrap", fault)
        end()
    return stream


def metered_items(source: Iterator[Any], observer: StreamObserver) -> Iterator[Any]:
    """Meter an SDK stream that is a bare iterator (no stream object to meter in place): the metered
    generator itself is handed out instead, with no object around it whose `__next__` would add a
    Python call per item. Its own close (a `break`, its garbage collection once started) ends the
    call, and its finalizer does if it is dropped before its first read (a generator not started
    runs no code when closed)."""
    generator: Iterator[Any] = _handed_out(source, observer, is_async=False)
    return generator


def metered_async_items(source: AsyncIterator[Any], observer: StreamObserver) -> AsyncIterator[Any]:
    """`metered_items` for an async iterator."""
    generator: AsyncIterator[Any] = _handed_out(source, observer, is_async=True)
    return generator


def _handed_out(source: Any, observer: StreamObserver, *, is_async: bool) -> Any:
    end = StreamEnd(observer)
    generator: Any
    try:
        if is_async:
            generator = _metered_async_iterator(source, observer, end)
        else:
            generator = _sync_iterator(source, observer, end)
        if not is_async:  # (`StreamEnd.on_close` looks at a sync generator's `gi_running`)
            end.generator = weakref.ref(generator)
        end_when_collected(generator, end)
    except Exception as fault:
        record_fault("stream.wrap", fault)
        end()
        return source
    return generator


def meter_async_stream(stream: Any, observer: StreamObserver, *, iterator_attr: str = "_iterator") -> Any:
    """Meter an asynchronous SDK stream in place and return it."""
    end = StreamEnd(observer)
    try:
        setattr(stream, iterator_attr, _metered_async_iterator(getattr(stream, iterator_attr), observer, end))
        response = getattr(stream, "response", None)
        if response is not None:
            hook_close(response, "aclose", end, is_async=True)
        end_when_collected(stream, end)
    except Exception as fault:
        record_fault("stream.wrap", fault)
        end()
    return stream
