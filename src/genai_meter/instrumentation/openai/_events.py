"""Metering a Chat Completions stream from its raw bytes, before the SDK decodes them (see
`_sse_bytes`).

What the meter needs: how many content events there were, which one carries the finish reason, and
the usage-only event (taken out here, before the SDK sees it, when genai-meter injected
`include_usage`). Some OpenAI-compatible servers put the usage on an event that has choices (the
finish event, or every event with vLLM's continuous usage stats), and Groq puts it under
`x_groq.usage` on the finish event, asked for or not: those are read too, the last one seen wins,
and a usage genai-meter asked for is taken out of such an event (re-encoded without it) so the
caller's chunk is what it would be uninstrumented. JSON is parsed only for events that carry usage
(or, without one, for the first event).
Without usage, output tokens are estimated as one per content event (OpenAI streams one token a
chunk), input from the prompt's length; the call is marked estimated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from ..._call import Call
from ..._usage import Usage, estimate_tokens, openai_chat_usage
from .._sse_bytes import ByteMeter, event_json

_FINISH_REASON = re.compile(rb'"finish_reason":\s*"([^"\\]+)"')


class ChatEventMeter(ByteMeter):
    """What one Chat Completions stream has shown so far, read from its bytes.

    Its JSON patterns follow the stream's spacing (OpenAI sends compact JSON; some servers put a
    space after `:` and `,`), read once from the first events.
    """

    __slots__ = (
        "content_events",
        "content_marker",
        "finish_event",
        "finish_marker",
        "first_event",
        "injected",
        "no_choices_marker",
        "prompt_chars",
        "usage_marker",
        "usage_null_marker",
        "usage_payload",
    )

    def __init__(self, call: Call, injected: bool, prompt_chars: Callable[[], int]) -> None:
        super().__init__(call)
        self.injected = injected
        self.prompt_chars = prompt_chars
        self.first_event: bytes | None = None
        self.finish_event: bytes | None = None
        self.usage_payload: dict[str, Any] | None = None
        self.content_events = 0
        self.content_marker = b"data: {"
        self.no_choices_marker = b'"choices":[]'
        self.finish_marker = b'"finish_reason":"'
        self.usage_null_marker = b',"usage":null'
        self.usage_marker = b'"usage":{'

    def learn(self, region: bytes) -> bool:
        """The spacing of the first data event (not the whole region: it may be the whole body)."""
        start = region.find(b"data:")
        if start < 0:
            return False
        first = self.first_event = self.event_at(region, start)
        spaced = b'"object": ' in first or b'"id": ' in first
        self.content_marker = b"data: {" if region.startswith(b"data: ", start) else b"data:{"
        self.no_choices_marker = b'"choices": []' if spaced else b'"choices":[]'
        self.finish_marker = b'"finish_reason": "' if spaced else b'"finish_reason":"'
        self.usage_null_marker = b', "usage": null' if spaced else b',"usage":null'
        self.usage_marker = b'"usage": {' if spaced else b'"usage":{'
        return True

    def read(self, region: bytes) -> bytes:
        """Count and note what `region` shows; without the injected usage event and the
        `"usage": null` it adds elsewhere."""
        self.read_ahead = False  # a complete event arrived: whatever was awaited after a finish is here
        self.content_events += region.count(self.content_marker)
        if self.no_choices_marker in region:
            region = self._rewrite_events(region, self.no_choices_marker, self._no_choices_event)
        if self.usage_marker in region:
            region = self._rewrite_events(region, self.usage_marker, self._usage_beside_choices)
        if self.injected:
            # With `include_usage` every chunk says `"usage": null`; without it (what the caller asked
            # for) the key is absent. Removed, so the caller's chunks are the same as uninstrumented.
            region = region.replace(self.usage_null_marker, b"")
        finished = region.rfind(self.finish_marker)
        if finished >= 0:
            start, end = self.event_bounds(region, finished)
            self.finish_event = region[start:end]
            # The usage event genai-meter asked for comes next: read it before handing this over,
            # however many HTTP chunks it takes (until the next complete event, whatever it is).
            # Not when another event already follows the finish here (another choice, `[DONE]`).
            self.read_ahead = self.injected and self.usage_payload is None and end == len(region)
        return region

    def _rewrite_events(self, region: bytes, marker: bytes, rewrite: Callable[[Any], bytes | None]) -> bytes:
        """Hand the JSON of each event that contains `marker` to `rewrite`; an event it returns bytes
        for is replaced by them (`b""` cuts it out)."""
        at = region.find(marker)
        while at >= 0:
            start, end = self.event_bounds(region, at)
            replacement = rewrite(event_json(region[start:end]))
            if replacement is not None:
                region = region[:start] + replacement + region[end:]
                end = start + len(replacement)
            at = region.find(marker, end)
        return region

    def _no_choices_event(self, payload: Any) -> bytes | None:
        """An event with no choices: the usage event (cut out when injected), or another (Azure's
        prompt filter results)."""
        self.content_events -= 1  # counted as content; it is not
        if isinstance(payload, dict) and payload.get("choices") == [] and payload.get("usage"):
            self.usage_payload = payload
            if self.injected:
                return b""
        return None

    def _usage_beside_choices(self, payload: Any) -> bytes | None:
        """Usage on an event that also has choices (or Groq's `x_groq.usage`); the last one wins. An
        injected `usage` is taken out of the event, which is re-encoded without it."""
        if not isinstance(payload, dict) or payload.get("choices") == []:  # `choices: []` events: above
            return None
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
        usage_payload = self.usage_payload
        raw_usage = usage_payload.get("usage") if usage_payload is not None else None
        usage = openai_chat_usage(raw_usage)
        if usage is None:
            usage = Usage(
                input_tokens=estimate_tokens(self.prompt_chars()), output_tokens=self.content_events, estimated=True
            )
        ids = usage_payload if usage_payload is not None else event_json(self.first_event or b"")
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
