"""Metering a Chat Completions stream from its raw bytes, before the SDK decodes them (see
`_sse_bytes`).

What the meter needs: how much text was streamed, which events carry the finish reasons, and
the usage-only event (taken out here, before the SDK sees it, when genai-meter injected
`include_usage`). Some OpenAI-compatible servers put the usage on an event that has choices (the
finish event, or every event with vLLM's continuous usage stats), and Groq puts it under
`x_groq.usage` on the finish event, asked for or not: those are read too, the last one seen wins,
and a usage genai-meter asked for is taken out of such an event (re-encoded without it) so the
caller's chunk is what it would be uninstrumented. JSON is parsed only for events that carry usage
(or, without one, for the first event), and for the finish events when there are several (`n` > 1:
one finish reason per choice, in the choices' order). The usage-only event (no choices), the usual
one, is recognised by a search and kept as bytes: its JSON is parsed where the call's ending is
made, off the app's thread where it may be (~2.5 µs an event).
Without usage, output tokens are estimated as one per piece of text streamed (a non-empty content,
refusal or tool-call arguments; OpenAI streams one token a chunk), counted the same way as the
chunk fallback (`ChatStreamObserver`) counts them; input from the prompt's length; the call is marked
estimated.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import Any

from ..._call import Call, Outcome
from ..._usage import openai_chat_usage
from .._sse_bytes import ByteMeter, contains, event_json
from .._values import text
from ._observers import reasons_by_index, stream_estimate, with_reported_cost

_FINISH_REASON = re.compile(rb'"finish_reason":\s*"([^"\\]+)"')
_MAX_CHOICES = 128  # the most choices (`n`) OpenAI answers with
# Bytes of a stream whose text is counted only if its usage does not come (see `ChatEventMeter.read`);
# past this, what is held is counted at once, so a long stream keeps no more than this alive.
_UNCOUNTED_LIMIT = 1 << 16
# The fields whose text is output, in chat chunks' deltas and in legacy completions' chunks.
CHAT_TEXT_KEYS = (b"content", b"refusal", b"arguments")
COMPLETION_TEXT_KEYS = (b"text",)


@functools.cache
def _text_markers(keys: tuple[bytes, ...], colon: bytes) -> tuple[tuple[bytes, bytes], ...]:
    """(a string value starts, an empty string value) for each key: their counts' difference is how
    many non-empty values there are. Text inside a JSON string has its quotes escaped, so it never
    matches."""
    return tuple((b'"' + key + b'"' + colon + b'"', b'"' + key + b'"' + colon + b'""') for key in keys)


_COMPACT_CHAT_MARKERS = _text_markers(CHAT_TEXT_KEYS, b":")


class ChatEventMeter(ByteMeter):
    """What one Chat Completions stream has shown so far, read from its bytes.

    Its JSON patterns follow the stream's spacing (OpenAI sends compact JSON; some servers put a
    space after `:` and `,`), read once from the first events.
    """

    __slots__ = (
        "finish_events",
        "finish_marker",
        "first_event",
        "injected",
        "prompt_chars",
        "single_choice",
        "text_events",
        "text_keys",
        "text_markers",
        "uncounted",
        "uncounted_bytes",
        "usage_expected",
        "usage_marker",
        "usage_null_marker",
        "usage_only_marker",
        "usage_payload",
    )

    def __init__(
        self,
        call: Call,
        injected: bool,
        prompt_chars: Callable[[], int],
        text_keys: tuple[bytes, ...] = CHAT_TEXT_KEYS,
        usage_expected: bool | None = None,
        single_choice: bool = False,
    ) -> None:
        """`usage_expected`: the request asked for stream usage (genai-meter injected it, or the
        caller did); by default, when genai-meter injected it. `single_choice`: the request asked
        for one choice (`n` 1 or unset), so only the last finish event of a run of events counts
        (see `read`)."""
        # (the base classes' fields set here, not through their `__init__`s: a meter is made for
        # every stream, and two `super()` calls cost more than the stores)
        self.call = call
        self.read_ahead = False
        self.pending = b""
        self.separator = b""
        self.learned = False
        self.broken = False
        self.injected = injected
        self.single_choice = single_choice
        self.usage_expected = injected if usage_expected is None else usage_expected
        self.uncounted: list[bytes] = []
        self.uncounted_bytes = 0
        self.prompt_chars = prompt_chars
        self.first_event: bytes | None = None
        self.finish_events: list[bytes] = []
        # the usage event's decoded JSON, or its bytes (a usage-only event: decoded by `_outcome`)
        self.usage_payload: dict[str, Any] | bytes | None = None
        self.text_events = 0
        self.text_keys = text_keys
        self.text_markers = _COMPACT_CHAT_MARKERS if text_keys is CHAT_TEXT_KEYS else _text_markers(text_keys, b":")
        self.finish_marker = b'"finish_reason":"'
        self.usage_null_marker = b',"usage":null'
        self.usage_marker = b'"usage":{'
        self.usage_only_marker = b'"choices":[]'

    def learn(self, region: bytes) -> bool:
        """The spacing of the first data event (not the whole region: it may be the whole body)."""
        start = region.find(b"data:")
        if start < 0:
            return False
        start, end = self.event_bounds(region, start)
        first = self.first_event = region[start:end]
        # Spaced: its first key is followed by a space (`__init__` set the compact patterns). A JSON
        # string holds a quote only escaped, so `":` first ends the first key.
        colon = first.find(b'":')
        if colon >= 0 and first[colon + 2 : colon + 3] == b" ":
            self.text_markers = _text_markers(self.text_keys, b": ")
            self.finish_marker = b'"finish_reason": "'
            self.usage_null_marker = b', "usage": null'
            self.usage_marker = b'"usage": {'
            self.usage_only_marker = b'"choices": []'
        return True

    def read(self, region: bytes) -> bytes:
        """Count and note what `region` shows; without the injected usage event and the
        `"usage": null` it adds elsewhere."""
        self.read_ahead = False  # a complete event arrived: whatever was awaited after a finish is here
        at = region.find(self.usage_marker)
        if at >= 0:
            region = self._cut_usage_events(region, at)
        if self.injected:
            # With `include_usage` every chunk says `"usage": null`; without it (what the caller asked
            # for) the key is absent. Removed, so the caller's chunks are the same as uninstrumented
            # (split and joined: one search of the region, where `replace` makes two).
            region = b"".join(region.split(self.usage_null_marker))
        finish_marker = self.finish_marker
        # One choice: of the finish events in this run only the last counts (the last finish reason
        # of a choice wins, see `_finish_reasons`), found searching back from the end, where it is
        # (a forward search reads the whole run up to it). Several choices: each finish event once.
        finished = region.rfind(finish_marker) if self.single_choice else region.find(finish_marker)
        if finished >= 0:
            finish_events = self.finish_events
            while finished >= 0:
                start, end = self.event_bounds(region, finished)
                if len(finish_events) < _MAX_CHOICES:  # a server repeating it is not kept for ever
                    finish_events.append(region[start:end])
                finished = -1 if self.single_choice else region.find(finish_marker, end)
            # The usage event genai-meter asked for comes next: read it before handing this over,
            # however many HTTP chunks it takes (until the next complete event, whatever it is).
            # Not when another event already follows the last finish here (another choice, `[DONE]`).
            self.read_ahead = self.injected and self.usage_payload is None and end == len(region)
        if self.usage_expected:
            # The text is counted only for an estimate, which a stream whose usage comes never needs:
            # the regions (the very bytes passed on, kept alive a little longer) wait for `finish`.
            self.uncounted.append(region)
            uncounted_bytes = self.uncounted_bytes = self.uncounted_bytes + len(region)
            if uncounted_bytes > _UNCOUNTED_LIMIT:
                self._count_uncounted()
        else:
            self._count_text(region)
        return region

    def _count_text(self, region: bytes) -> None:
        """Add the pieces of text `region` shows (non-empty values of the text keys)."""
        for marker, empty in self.text_markers:
            found = region.count(marker)
            if found:
                self.text_events += found - region.count(empty)

    def _count_uncounted(self) -> None:
        for region in self.uncounted:
            self._count_text(region)
        self.uncounted = []
        self.uncounted_bytes = 0

    def _cut_usage_events(self, region: bytes, at: int) -> bytes:
        """Hand the JSON of each event that shows a usage object (the first at `at`) to `_usage_event`;
        an event it returns bytes for is replaced by them (`b""` cuts it out)."""
        marker = self.usage_marker
        while at >= 0:
            start, end = self.event_bounds(region, at)
            event = region[start:end]
            if contains(event, self.usage_only_marker):  # the usage event, with no choices: decoded later
                self.usage_payload = event
                replacement = b"" if self.injected else None
            else:
                replacement = self._usage_event(event_json(event))
            if replacement is not None:
                region = b"".join((region[:start], replacement, region[end:]))  # (one copy, where `+` makes two)
                end = start + len(replacement)
            at = region.find(marker, end)
        return region

    def _usage_event(self, payload: Any) -> bytes | None:
        """An event that shows a usage object: the usage event, with no choices (cut out when
        injected), or usage on an event that also has choices (or Groq's `x_groq.usage`); the last
        one wins. An injected `usage` beside choices is taken out of the event, which is re-encoded
        without it. Other events with no choices (Azure's prompt filter results) are left alone."""
        if not isinstance(payload, dict):
            return None
        if payload.get("choices") == []:
            if not isinstance(payload.get("usage"), dict):
                return None
            self.usage_payload = payload
            return b"" if self.injected else None
        usage = payload.get("usage")
        groq = payload.get("x_groq")
        if not isinstance(usage, dict) and isinstance(groq, dict):
            usage = groq.get("usage")
        if not isinstance(usage, dict):
            return None
        self.usage_payload = {**payload, "usage": usage}
        if not (self.injected and "usage" in payload):
            return None
        del payload["usage"]
        return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + self.separator

    def finish(self, error: BaseException | None) -> None:
        if self.usage_payload is None:  # an estimate: the prompt, the app's own, is measured now
            self.call.finish(**self._outcome(error))
        else:
            # Read where the call's ending is made (off the app's thread where it may be): all of
            # it is this meter's own (the usage event, its bytes or its JSON), unchanged once the stream ended.
            self.call.finish_reading(functools.partial(self._outcome, error))

    def _outcome(self, error: BaseException | None) -> Outcome:
        kept = self.usage_payload
        usage_payload: dict[str, Any] | None
        if type(kept) is bytes:
            decoded = event_json(kept)
            usage_payload = decoded if isinstance(decoded, dict) and isinstance(decoded.get("usage"), dict) else None
        else:
            usage_payload = kept if isinstance(kept, dict) else None
        raw_usage = usage_payload.get("usage") if usage_payload is not None else None
        usage, cost = with_reported_cost(openai_chat_usage(raw_usage), raw_usage)
        if usage is None and (error is None or self.first_event is not None):
            # (a stream that failed before any of its events arrived was not billed: no estimate)
            self._count_uncounted()
            usage = stream_estimate(self.prompt_chars(), self.text_events)
        ids = usage_payload if usage_payload is not None else event_json(self.first_event or b"")
        ids = ids if isinstance(ids, dict) else {}
        return {
            "usage": usage,
            "response_model": ids.get("model"),
            "response_id": ids.get("id"),
            "error": error,
            "provider_cost_usd": cost,
            "finish_reasons": self._finish_reasons(),
            "service_tier": text(ids.get("service_tier")),
        }

    def _finish_reasons(self) -> tuple[str, ...] | None:
        """One finish reason per choice, in the choices' order. One finish event (one choice, the
        usual case) is read with a search; several are parsed to learn their choices' indexes."""
        events = self.finish_events
        if len(events) == 1:
            event = events[0]
            # (the usual case: one reason, without escapes, read with a split and a partition, whose
            # arguments are not parsed into a tuple as `find`'s are; else the pattern)
            parts = event.split(self.finish_marker)
            if len(parts) == 2:
                value, quote, _rest = parts[1].partition(b'"')
                if value and quote and value.find(b"\\") < 0:
                    return (value.decode(errors="replace"),)
            found = _FINISH_REASON.findall(event)
            if len(found) == 1:  # (the usual case, without a generator's frame)
                return (found[0].decode(errors="replace"),)
            return tuple(r.decode(errors="replace") for r in found) or None
        reasons: dict[int, str] = {}
        for event in events:
            payload = event_json(event)
            choices = payload.get("choices") if isinstance(payload, dict) else None
            for choice in choices if isinstance(choices, list) else ():
                reason = choice.get("finish_reason") if isinstance(choice, dict) else None
                if isinstance(reason, str) and reason:
                    index = choice.get("index")
                    reasons[index if type(index) is int else len(reasons)] = reason
        return reasons_by_index(reasons)
