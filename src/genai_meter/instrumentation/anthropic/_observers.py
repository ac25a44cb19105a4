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

from collections.abc import Callable
from typing import Any

from ..._call import Call
from ..._usage import anthropic_usage, field
from .._streams import TextStreamObserver

_USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "cache_creation",
    "output_tokens_details",
)


def finish_message(call: Call, message: Any) -> None:
    """A whole `Message` (also `ParsedMessage`, `BetaMessage`)."""
    stop = getattr(message, "stop_reason", None)
    call.finish(
        usage=anthropic_usage(getattr(message, "usage", None)),
        response_model=getattr(message, "model", None),
        response_id=getattr(message, "id", None),
        finish_reasons=(str(stop),) if stop else None,
    )


def _merge(into: dict[str, Any], usage: Any) -> None:
    if usage is None:
        return
    for name in _USAGE_FIELDS:
        value = field(usage, name)
        if value is not None:
            into[name] = value


class MessageStreamObserver(TextStreamObserver):
    """Raw message stream events (`Stream[RawMessageStreamEvent]`, beta ones too)."""

    __slots__ = ("final_usage", "stop_reason", "usage")

    def __init__(self, call: Call, prompt_chars: Callable[[], int]) -> None:
        super().__init__(call, prompt_chars)
        self.usage: dict[str, Any] = {}
        self.final_usage = False  # `message_delta`'s final counts arrived
        self.stop_reason: str | None = None

    def observe(self, item: Any) -> bool:
        kind = getattr(item, "type", None)
        if kind == "content_block_delta":
            # The text's length, for an estimate of the output should the final counts never come.
            # Read from the delta's `__dict__`: `getattr` of a field a delta type lacks raises inside
            # pydantic, and this runs for every delta.
            values = getattr(getattr(item, "delta", None), "__dict__", None)
            if values is not None:
                text = values.get("text") or values.get("thinking") or values.get("partial_json")
                if isinstance(text, str):
                    self.chars += len(text)
        elif kind == "message_start":
            message = getattr(item, "message", None)
            self.response_id = getattr(message, "id", None)
            self.model = getattr(message, "model", None)
            _merge(self.usage, getattr(message, "usage", None))
        elif kind == "message_delta":
            usage = getattr(item, "usage", None)
            _merge(self.usage, usage)
            self.final_usage = self.final_usage or usage is not None
            stop = getattr(getattr(item, "delta", None), "stop_reason", None)
            if stop:
                self.stop_reason = str(stop)
        return False

    def finish(self, error: BaseException | None) -> None:
        self.end_call(
            anthropic_usage(self.usage) if "input_tokens" in self.usage else None,
            error,
            output_incomplete=not self.final_usage,
            finish_reasons=(self.stop_reason,) if self.stop_reason else None,
        )
