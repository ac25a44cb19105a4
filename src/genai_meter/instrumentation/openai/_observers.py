"""Reading OpenAI responses and streams into the call's outcome.

Chat Completions streams carry usage only in a final chunk with `choices == []`, and only when
`stream_options.include_usage` was set; when genai-meter set it, that chunk is hidden from the
caller so the app sees exactly what it would see uninstrumented. Responses API streams carry the
whole response, usage included, in their terminal event.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ..._call import Call
from ..._usage import field, openai_chat_usage, openai_responses_usage
from .._streams import TextStreamObserver


def provider_cost(usage: Any) -> float | None:
    """OpenRouter (and some gateways) report the call's cost in `usage.cost`."""
    if usage is None:
        return None
    # Read pydantic's extra fields directly: getattr of a missing field raises inside pydantic (slow).
    extra = getattr(usage, "__pydantic_extra__", None)
    value = extra.get("cost") if isinstance(extra, dict) else getattr(usage, "cost", None)
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


def _finish_reasons(choices: Any) -> tuple[str, ...] | None:
    if not choices:
        return None
    reasons = tuple(str(r) for r in (getattr(c, "finish_reason", None) for c in choices) if r)
    return reasons or None


def _output_messages(call: Call, choices: Any) -> str | None:
    """The completion text, only when the user opted in to content capture."""
    if not call.runtime.config.capture_content or not choices:
        return None
    messages = []
    for choice in choices:
        message = getattr(choice, "message", None)
        content = getattr(message, "content", None) if message is not None else getattr(choice, "text", None)
        messages.append({"role": "assistant", "content": content})
    return json.dumps(messages, default=str)


def finish_chat(call: Call, completion: Any) -> None:
    """A whole ChatCompletion (also ParsedChatCompletion, legacy Completion)."""
    raw_usage = getattr(completion, "usage", None)
    usage = openai_chat_usage(raw_usage)
    choices = getattr(completion, "choices", None)
    call.finish(
        usage=usage,
        response_model=getattr(completion, "model", None),
        response_id=getattr(completion, "id", None),
        provider_cost_usd=provider_cost(raw_usage),
        finish_reasons=_finish_reasons(choices),
        output_messages=_output_messages(call, choices),
    )


def finish_embedding(call: Call, response: Any) -> None:
    raw_usage = getattr(response, "usage", None)
    call.finish(
        usage=openai_chat_usage(raw_usage),
        response_model=getattr(response, "model", None),
        provider_cost_usd=provider_cost(raw_usage),
    )


def finish_response(call: Call, response: Any) -> None:
    """A whole Responses API `Response`."""
    raw_usage = getattr(response, "usage", None)
    status = getattr(response, "status", None)
    call.finish(
        usage=openai_responses_usage(raw_usage),
        response_model=getattr(response, "model", None),
        response_id=getattr(response, "id", None),
        provider_cost_usd=provider_cost(raw_usage),
        finish_reasons=(str(status),) if status else None,
    )


def _forget_usage(chunk: Any) -> None:
    """Take `usage` out of a chunk, as if the API had not sent it (the caller did not ask for it)."""
    fields_set = getattr(chunk, "__pydantic_fields_set__", None)
    if isinstance(fields_set, set):
        fields_set.discard("usage")
    values = getattr(chunk, "__dict__", None)
    if isinstance(values, dict) and values.get("usage") is not None:
        values["usage"] = None


class ChatStreamObserver(TextStreamObserver):
    """Chat Completions chunks: usage from the usage chunk, else an estimate from text seen.

    The fallback for SDK streams without a raw-event hook (`_events` meters the others): when
    genai-meter injected `include_usage` (`injected`), the usage-only chunk is hidden here, and the
    `"usage": null` that the API then puts on every other chunk is taken out of the fields the chunk
    says were sent, so `to_dict()`, `to_json()` and `model_fields_set` are what the caller would get
    uninstrumented.
    """

    __slots__ = ("hide_usage_chunk", "injected", "raw_usage", "reasons")

    def __init__(self, call: Call, injected: bool, prompt_chars: Callable[[], int]) -> None:
        super().__init__(call, prompt_chars)
        self.injected = injected
        self.hide_usage_chunk = injected
        self.raw_usage: Any = None
        self.reasons: list[str] = []

    def observe(self, item: Any) -> bool:
        if self.response_id is None:
            self.response_id = item.id
            self.model = item.model
        usage = item.usage
        choices = item.choices
        if usage is not None:
            self.raw_usage = usage
        if self.injected and (usage is None or choices):
            _forget_usage(item)  # `"usage": null`, or usage on a chunk with choices: asked for by us
        if choices:
            for choice in choices:
                delta = getattr(choice, "delta", None)
                content = delta.content if delta is not None else getattr(choice, "text", None)
                if content:
                    self.chars += len(content)
                reason = choice.finish_reason
                if reason:
                    self.reasons.append(str(reason))
                    if self.raw_usage is None:  # Groq: `x_groq.usage`, a field the SDK does not declare
                        self.raw_usage = field(field(item, "x_groq"), "usage")
                    # the usage chunk genai-meter asked for comes next: read it before handing this over
                    self.read_ahead = self.injected and self.raw_usage is None
            return False
        return self.hide_usage_chunk and usage is not None

    def finish(self, error: BaseException | None) -> None:
        self.end_call(
            openai_chat_usage(self.raw_usage),
            error,
            provider_cost_usd=provider_cost(self.raw_usage),
            finish_reasons=tuple(self.reasons) or None,
        )


_TERMINAL_EVENTS = frozenset(("response.completed", "response.incomplete", "response.failed"))


class ResponsesStreamObserver(TextStreamObserver):
    """Responses API events: the terminal event carries the whole response with its usage."""

    __slots__ = ("final",)

    def __init__(self, call: Call, prompt_chars: Callable[[], int]) -> None:
        super().__init__(call, prompt_chars)
        self.final: Any = None

    def observe(self, item: Any) -> bool:
        kind = getattr(item, "type", None)
        if kind == "response.output_text.delta":
            delta = getattr(item, "delta", None)
            if isinstance(delta, str):
                self.chars += len(delta)
        elif kind == "response.created":
            response = getattr(item, "response", None)
            self.response_id = getattr(response, "id", None)
            self.model = getattr(response, "model", None)
        elif kind in _TERMINAL_EVENTS:
            self.final = getattr(item, "response", None)
        return False

    def finish(self, error: BaseException | None) -> None:
        final = self.final
        if final is None or getattr(final, "usage", None) is None:
            self.end_call(None, error)
            return
        if error is None and getattr(final, "status", None) == "failed":
            error = RuntimeError("response failed")
        self.model = getattr(final, "model", None) or self.model
        self.response_id = getattr(final, "id", None) or self.response_id
        self.end_call(openai_responses_usage(final.usage), error, provider_cost_usd=provider_cost(final.usage))
