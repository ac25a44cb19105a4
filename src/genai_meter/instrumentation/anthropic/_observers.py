"""Reading Anthropic messages and message streams into the call's outcome.

A stream reports usage twice: `message_start` carries the input side (and a placeholder output
count), `message_delta` the *cumulative* final counts. Fields are therefore overwritten by the later
event, never added: adding them counts the output (and, with the current API, the input) twice. The
one-hour cache-write breakdown only comes in `message_start`.

A stream that ends before `message_delta` (the app stopped reading at the end of the text, say) has
only `message_start`'s output count, a placeholder of about one token: its output side is then
estimated from the text streamed so far, and the usage marked estimated, so the call's cost is not
cut to its input.
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Callable
from typing import Any

from ..._call import Call, Outcome
from ..._usage import _declared_fields, anthropic_usage, field
from .._streams import CollectingObserver
from .._values import text

_TYPE = operator.attrgetter("type")
_USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "cache_creation",
    "output_tokens_details",
    "iterations",  # (compactions: billed, and left out of the counts above)
)


def service_tier(usage: Any) -> str | None:
    """The tier Anthropic says it served the call at, as the pricing data names it: `fast` when the
    usage says `speed: "fast"` (fast mode, billed at premium rates, a dimension of Anthropic's own
    usage report), else its `service_tier` (`batch` is half price; `standard` and `priority` are
    priced at standard rates)."""
    if field(usage, "speed") == "fast":
        return "fast"
    return text(field(usage, "service_tier"))


def _content_chars(message: Any) -> int:
    """The response's length (text, thinking, tool input), for an estimate when it reported no usage."""
    total = 0
    for block in getattr(message, "content", None) or ():
        for name in ("text", "thinking"):
            value = getattr(block, name, None)
            if isinstance(value, str):
                total += len(value)
        tool_input = getattr(block, "input", None)
        if tool_input is not None:
            total += len(json.dumps(tool_input, default=str))
    return total


def finish_message(call: Call, message: Any, error: BaseException | None = None) -> None:
    """A whole `Message` (also `ParsedMessage`, `BetaMessage`), and the SDK's `error` when it raised
    after receiving it. Without usage the call's tokens are estimated from the text (the response's
    is measured only then)."""
    stop = getattr(message, "stop_reason", None)
    raw_usage = getattr(message, "usage", None)
    usage = anthropic_usage(raw_usage)
    call.finish(
        usage=usage,
        response_model=getattr(message, "model", None),
        response_id=getattr(message, "id", None),
        error=error,
        finish_reasons=(str(stop),) if stop else None,
        output_chars=_content_chars(message) if usage is None else None,
        service_tier=service_tier(raw_usage),
    )


def _merge(into: dict[str, Any], usage: Any) -> None:
    if usage is None:
        return
    # (a dict, or an SDK model holding every field in its `__dict__`: read there; `field` for the rest)
    values = usage if type(usage) is dict else _declared_fields(usage)
    if values is not None:
        for name in _USAGE_FIELDS:
            value = values.get(name)
            if value is not None:
                into[name] = value
        return
    for name in _USAGE_FIELDS:
        value = field(usage, name)
        if value is not None:
            into[name] = value


class MessageStreamObserver(CollectingObserver):
    """Raw message stream events (`Stream[RawMessageStreamEvent]`, beta ones too).

    Nothing is read per event: the events are kept (see `CollectingObserver`) and read, in order,
    when the stream ends (or when `spill` lets go of them); the text's length only for an estimate."""

    __slots__ = ("final_usage", "service_tier", "stop_reason", "usage")

    def __init__(self, call: Call, prompt_chars: Callable[[], int]) -> None:
        super().__init__(call, prompt_chars)
        self.usage: dict[str, Any] = {}
        self.final_usage = False  # `message_delta`'s final counts arrived
        self.stop_reason: str | None = None
        self.service_tier: str | None = None

    def spill(self) -> None:
        kept = self.kept
        self._read(kept)
        self._count_text(kept)  # (they are let go of: their text cannot be measured later)
        kept.clear()

    def _read(self, events: list[Any]) -> None:
        """The ids, usage and stop reason that `events` (in the stream's order) show."""
        try:  # (the usual stream: one `message_start`, then one `message_delta`, found by C loops)
            kinds = list(map(_TYPE, events))
        except AttributeError:  # an event without a type
            kinds = None
        if kinds is not None and kinds.count("message_start") <= 1 and kinds.count("message_delta") <= 1:
            start = kinds.index("message_start") if "message_start" in kinds else -1
            delta = kinds.index("message_delta") if "message_delta" in kinds else len(kinds)
            if start < delta:
                self._read_each([events[start]] if start >= 0 else [])
                self._read_each([events[delta]] if delta < len(kinds) else [])
                return
        self._read_each(events)

    def _read_each(self, events: list[Any]) -> None:
        for item in events:
            kind = getattr(item, "type", None)
            if kind == "message_start":
                message = getattr(item, "message", None)
                self.response_id = getattr(message, "id", None)
                self.model = getattr(message, "model", None)
                usage = getattr(message, "usage", None)
                _merge(self.usage, usage)
                self.service_tier = service_tier(usage)
            elif kind == "message_delta":
                usage = getattr(item, "usage", None)
                _merge(self.usage, usage)
                self.final_usage = self.final_usage or usage is not None
                stop = getattr(getattr(item, "delta", None), "stop_reason", None)
                if stop:
                    self.stop_reason = str(stop)

    def _count_text(self, events: list[Any]) -> None:
        """The streamed text's length, for an estimate of the output (the final counts never came).
        Read from each delta's `__dict__`: `getattr` of a field a delta type lacks raises inside
        pydantic."""
        for item in events:
            if getattr(item, "type", None) == "content_block_delta":
                values = getattr(getattr(item, "delta", None), "__dict__", None)
                if values is not None:
                    text = values.get("text") or values.get("thinking") or values.get("partial_json")
                    if isinstance(text, str):
                        self.chars += len(text)

    def finish(self, error: BaseException | None) -> None:
        kept = self.kept
        self._read(kept)
        estimate = "input_tokens" not in self.usage or not self.final_usage
        if estimate:
            self._count_text(kept)
        kept.clear()
        if estimate:
            self.call.finish(**self._outcome(error))  # an estimate: the prompt, the app's own, is measured now
        else:
            # Read where the call's ending is made (off the app's thread where it may be): the usage
            # merged into this observer's own dict, unchanged once the stream ended.
            self.call.finish_reading(functools.partial(self._outcome, error))

    def _outcome(self, error: BaseException | None) -> Outcome:
        return self.outcome(
            anthropic_usage(self.usage) if "input_tokens" in self.usage else None,
            error,
            output_incomplete=not self.final_usage,
            finish_reasons=(self.stop_reason,) if self.stop_reason else None,
            service_tier=self.service_tier,
        )
