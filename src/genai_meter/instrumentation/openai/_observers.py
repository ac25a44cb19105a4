"""Reading OpenAI responses and streams into the call's outcome.

Chat Completions streams carry usage only in a final chunk with `choices == []`, and only when
`stream_options.include_usage` was set; when genai-meter set it, that chunk is hidden from the
caller so the app sees exactly what it would see uninstrumented. Responses API streams carry the
whole response, usage included, in their terminal event.

What a response says is read as untrusted: a model or id that is not text is left out, a reported
cost that is not an amount is not used, and the service tier it was served at prices the call.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from typing import Any

from ..._call import Call
from ..._usage import Usage, estimate_tokens, field, new_usage, openai_chat_usage, openai_responses_usage
from .._streams import StreamObserver, TextStreamObserver
from .._values import text
from ._background import held_in_background


def with_reported_cost(usage: Usage | None, raw_usage: Any) -> tuple[Usage | None, float | None]:
    """The usage to finish the call with and the provider-reported cost to price it at, if any.

    A reported cost that is not an amount (negative, NaN, infinite, not a number) is not used: the
    call is priced from its tokens instead, and its usage is marked suspect so the fault is seen.
    """
    if raw_usage is None:
        return usage, None
    cost = field(raw_usage, "cost")  # OpenRouter's (and some gateways') report of what the call cost
    if cost is None:
        return usage, None
    if type(cost) is float or type(cost) is int:
        amount = float(cost) if -1e300 < cost < 1e300 else math.inf  # (an int too large for a float)
        if 0 <= amount < math.inf:
            return usage, amount
    return (dataclasses.replace(usage, suspect=True) if usage is not None else None), None


def reasons_by_index(reasons: dict[int, str]) -> tuple[str, ...] | None:
    """One finish reason per choice, in the choices' order (`n` > 1 streams them interleaved)."""
    return tuple(reasons[index] for index in sorted(reasons)) or None


def stream_estimate(prompt_chars: int, text_events: int) -> Usage:
    """The usage of a Chat Completions stream that reported none: the prompt at about 4 characters a
    token, and one output token for each piece of text streamed (OpenAI streams a token a chunk).
    Events without text (the role, the finish) are not output."""
    return new_usage(input_tokens=estimate_tokens(prompt_chars), output_tokens=text_events, estimated=True)


def _finish_reasons(choices: Any) -> tuple[str, ...] | None:
    if not choices:
        return None
    reasons = []  # (a loop, not nested generators: two generator frames fewer per call)
    for choice in choices:
        reason = getattr(choice, "finish_reason", None)
        if reason:
            reasons.append(str(reason))
    return tuple(reasons) or None


def _length(value: Any) -> int:
    return len(value) if isinstance(value, str) else 0


def _choices_chars(choices: Any) -> int:
    """The length of the text the choices carry (content, refusal, tool-call arguments; a legacy
    completion's text), for an estimate of a response that reported no usage."""
    if not isinstance(choices, list | tuple):
        return 0
    chars = 0
    for choice in choices:
        message = getattr(choice, "message", None)
        if message is None:
            chars += _length(getattr(choice, "text", None))
            continue
        chars += _length(getattr(message, "content", None)) + _length(getattr(message, "refusal", None))
        for tool_call in _list(getattr(message, "tool_calls", None)):
            chars += _length(getattr(getattr(tool_call, "function", None), "arguments", None))
    return chars


def _list(value: Any) -> list[Any]:
    """A response field that should be a list, or an empty one."""
    return value if isinstance(value, list) else []


def _output_messages(choices: Any) -> str | None:
    """The completion text (called only when the user opted in to content capture)."""
    if not choices:
        return None
    messages = []
    for choice in choices:
        message = getattr(choice, "message", None)
        content = getattr(message, "content", None) if message is not None else getattr(choice, "text", None)
        messages.append({"role": "assistant", "content": content})
    return json.dumps(messages, default=str)


def finish_chat(call: Call, completion: Any, error: BaseException | None = None) -> None:
    """A whole ChatCompletion (also ParsedChatCompletion, legacy Completion); `error` when the SDK
    raised after receiving it (structured output it could not parse)."""
    raw_usage = getattr(completion, "usage", None)
    usage, cost = with_reported_cost(openai_chat_usage(raw_usage), raw_usage)
    choices = getattr(completion, "choices", None)
    call.finish(
        usage=usage,
        response_model=getattr(completion, "model", None),
        response_id=getattr(completion, "id", None),
        error=error,
        provider_cost_usd=cost,
        finish_reasons=_finish_reasons(choices),
        output_messages=_output_messages(choices) if call.runtime.config.capture_content else None,
        output_chars=_choices_chars(choices) if usage is None and error is None else None,
        service_tier=text(field(completion, "service_tier")),
    )


def finish_embedding(call: Call, response: Any, error: BaseException | None = None) -> None:
    """A CreateEmbeddingResponse (no output: an estimate of missing usage is the input's). It names
    no service tier, but a batch's output does (`_batch_output`)."""
    raw_usage = getattr(response, "usage", None)
    usage, cost = with_reported_cost(openai_chat_usage(raw_usage), raw_usage)
    call.finish(
        usage=usage,
        response_model=getattr(response, "model", None),
        error=error,
        provider_cost_usd=cost,
        output_chars=0,  # embeddings have no output
        service_tier=text(field(response, "service_tier")),
    )


def finish_response(call: Call, response: Any, error: BaseException | None = None) -> None:
    """A whole Responses API `Response` (also ParsedResponse); `error` as for `finish_chat`. A
    background response still running is held open until it is seen finished (`_background`)."""
    if error is None and held_in_background(call, response):
        return
    raw_usage = getattr(response, "usage", None)
    usage, cost = with_reported_cost(openai_responses_usage(raw_usage), raw_usage)
    status = getattr(response, "status", None)
    call.finish(
        usage=usage,
        response_model=getattr(response, "model", None),
        response_id=getattr(response, "id", None),
        error=error,
        provider_cost_usd=cost,
        finish_reasons=(str(status),) if status else None,
        output_chars=_length(getattr(response, "output_text", None)) if usage is None and error is None else None,
        service_tier=text(field(response, "service_tier")),
    )


def finish_images(call: Call, response: Any, error: BaseException | None = None) -> None:
    """An `ImagesResponse`. GPT Image models report tokens (input: the prompt's text and any input
    images; output: the image tokens), priced like a response's; DALL·E models report none and are
    priced per image, which the pricing data does not hold: recorded with no tokens and no cost."""
    usage = openai_responses_usage(getattr(response, "usage", None))
    call.finish(usage=usage, error=error, service_tier=text(field(response, "service_tier")))


class ImagesStreamObserver(StreamObserver):
    """A streamed image generation: the `...completed` event carries the usage."""

    __slots__ = ("usage",)

    def __init__(self, call: Call) -> None:
        super().__init__(call)
        self.usage: Any = None

    def observe(self, item: Any) -> bool:
        usage = getattr(item, "usage", None)
        if usage is not None:
            self.usage = usage
        return False

    def finish(self, error: BaseException | None) -> None:
        self.call.finish(usage=openai_responses_usage(self.usage), error=error)


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

    __slots__ = ("hide_usage_chunk", "injected", "raw_usage", "reasons", "service_tier", "text_events")

    def __init__(self, call: Call, injected: bool, prompt_chars: Callable[[], int]) -> None:
        super().__init__(call, prompt_chars)
        self.injected = injected
        self.hide_usage_chunk = injected
        self.raw_usage: Any = None
        self.reasons: dict[int, str] = {}
        self.service_tier: Any = None
        self.text_events = 0  # pieces of text streamed: the output estimate without usage

    def received(self) -> bool:
        return super().received() or self.text_events > 0

    def estimate(self) -> Usage:
        return stream_estimate(self.prompt_chars(), self.text_events)

    def observe(self, item: Any) -> bool:
        if self.response_id is None:
            self.response_id = item.id
            self.model = item.model
            self.service_tier = field(item, "service_tier")
        usage = item.usage
        choices = item.choices
        if usage is not None:
            self.raw_usage = usage
        if self.injected and (usage is None or choices):
            _forget_usage(item)  # `"usage": null`, or usage on a chunk with choices: asked for by us
        if choices:
            for choice in choices:
                delta = getattr(choice, "delta", None)
                if delta is not None:
                    self.text_events += _delta_texts(delta)
                elif getattr(choice, "text", None):  # a legacy completion's chunk
                    self.text_events += 1
                reason = choice.finish_reason
                if reason:
                    index = choice.index
                    self.reasons[index if type(index) is int else len(self.reasons)] = str(reason)
                    if self.raw_usage is None:  # Groq: `x_groq.usage`, a field the SDK does not declare
                        self.raw_usage = field(field(item, "x_groq"), "usage")
                    # the usage chunk genai-meter asked for comes next: read it before handing this over
                    self.read_ahead = self.injected and self.raw_usage is None
            return False
        return self.hide_usage_chunk and usage is not None

    def finish(self, error: BaseException | None) -> None:
        raw_usage = self.raw_usage
        usage, cost = with_reported_cost(openai_chat_usage(raw_usage), raw_usage)
        self.end_call(
            usage,
            error,
            provider_cost_usd=cost,
            finish_reasons=reasons_by_index(self.reasons),
            service_tier=text(self.service_tier),
        )


def _delta_texts(delta: Any) -> int:
    """How many pieces of text a chunk's delta carries: its content, refusal and tool-call arguments
    (the same fields the byte meter counts)."""
    count = 1 if getattr(delta, "content", None) else 0
    if getattr(delta, "refusal", None):
        count += 1
    for tool_call in _list(getattr(delta, "tool_calls", None)):
        if getattr(getattr(tool_call, "function", None), "arguments", None):
            count += 1
    return count


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
            self.response_id = text(getattr(response, "id", None))
            self.model = text(getattr(response, "model", None))
        elif kind in _TERMINAL_EVENTS:
            self.final = getattr(item, "response", None)
        return False

    def finish(self, error: BaseException | None) -> None:
        final = self.final
        tier = text(field(final, "service_tier"))
        raw_usage = getattr(final, "usage", None) if final is not None else None
        if raw_usage is None:
            self.end_call(None, error, service_tier=tier)
            return
        if error is None and getattr(final, "status", None) == "failed":
            error = RuntimeError("response failed")
        self.model = text(getattr(final, "model", None)) or self.model
        self.response_id = text(getattr(final, "id", None)) or self.response_id
        usage, cost = with_reported_cost(openai_responses_usage(raw_usage), raw_usage)
        status = text(getattr(final, "status", None))
        self.end_call(
            usage, error, provider_cost_usd=cost, service_tier=tier, finish_reasons=(status,) if status else None
        )
