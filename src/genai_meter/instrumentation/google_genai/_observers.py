"""Reading Gemini responses and response streams into the call's outcome.

Every stream chunk carries `usage_metadata`, cumulative for the request: the last chunk's figures
are the request's, never the sum of the chunks'. The chunks before the last carry the prompt count
only, so a stream that ends early (the app stopped reading) has no output count: its output side is
then estimated from the text streamed so far, and the usage marked estimated.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ..._call import Call
from ..._usage import field, gemini_usage, new_usage
from .._streams import TextStreamObserver


def _reasons(response: Any) -> tuple[str, ...] | None:
    candidates = getattr(response, "candidates", None) or ()
    reasons = []
    for candidate in candidates:
        reason = getattr(candidate, "finish_reason", None)
        if reason is not None:
            reasons.append(str(getattr(reason, "value", reason)))
    return tuple(reasons) or None


_UNCOUNTED_LIMIT = 256  # chunks of a stream held for their text's length (see `GenerateStreamObserver`)


def _text_chars(response: Any) -> int:
    total = 0
    for candidate in getattr(response, "candidates", None) or ():
        parts = getattr(getattr(candidate, "content", None), "parts", None) or ()
        for part in parts:
            text = getattr(part, "text", None)
            if isinstance(text, str):
                total += len(text)
    return total


def _from_http_body(response: Any) -> Any:
    """The response the SDK left unread: with `should_return_http_response=True` it returns only the
    HTTP body (`sdk_http_response.body`, the API's camelCase JSON), usage included. Parsed with the
    SDK's own model (it takes the API's field names); None when there is no such body."""
    body = getattr(getattr(response, "sdk_http_response", None), "body", None)
    if not isinstance(body, str | bytes) or not body:
        return None
    try:
        return type(response).model_validate(json.loads(body))
    except ValueError:  # not JSON, or not a response (pydantic's ValidationError is a ValueError)
        return None


def finish_response(call: Call, response: Any, service_tier: str | None = None) -> None:
    """A whole `GenerateContentResponse`. Without `usage_metadata` the call's tokens are estimated
    from the text (the response's is measured only then). `service_tier`: the tier it was served at
    where the response cannot say (`batch` for a Batch Mode job's response)."""
    metadata = getattr(response, "usage_metadata", None)
    if metadata is None:
        response = _from_http_body(response) or response
        metadata = getattr(response, "usage_metadata", None)
    usage = gemini_usage(metadata)
    call.finish(
        usage=usage,
        response_model=getattr(response, "model_version", None),
        response_id=getattr(response, "response_id", None),
        finish_reasons=_reasons(response),
        output_chars=_text_chars(response) if usage is None else None,
        service_tier=service_tier,
    )


def _statistics_tokens(response: Any) -> int | None:
    """The tokens Vertex AI reports per embedding (`statistics.token_count`), summed; None when an
    embedding reports none."""
    total = 0
    embeddings = getattr(response, "embeddings", None) or ()
    for embedding in embeddings:
        count = getattr(getattr(embedding, "statistics", None), "token_count", None)
        if type(count) is not int and type(count) is not float:
            return None
        total += int(count)
    return total if embeddings else None


def finish_embeddings(call: Call, response: Any) -> None:
    """An `EmbedContentResponse`: the prompt's tokens from `usage_metadata` (the Gemini API), else
    the embeddings' own counts (Vertex AI), else estimated from the text (no output: embeddings
    have none)."""
    usage = gemini_usage(getattr(response, "usage_metadata", None))
    if usage is None:
        tokens = _statistics_tokens(response)
        usage = new_usage(input_tokens=tokens) if tokens is not None else None
    call.finish(usage=usage, output_chars=0 if usage is None else None)


class GenerateStreamObserver(TextStreamObserver):
    """`GenerateContentResponse` chunks: the last `usage_metadata` seen is the request's usage."""

    __slots__ = ("last", "metadata", "uncounted")

    def __init__(self, call: Call, prompt_chars: Callable[[], int]) -> None:
        super().__init__(call, prompt_chars)
        self.metadata: Any = None
        self.last: Any = None
        # Chunks whose text is measured only if the stream's final counts never come (an estimate
        # needs it); past `_UNCOUNTED_LIMIT` they are measured at once, so a long stream keeps no
        # more than that many alive.
        self.uncounted: list[Any] = []

    def observe(self, item: Any) -> bool:
        # Per chunk only what accumulates (usage, text length); ids from the first chunk and finish
        # reasons from the last are read once.
        if self.last is None:
            self.model = getattr(item, "model_version", None)
            self.response_id = getattr(item, "response_id", None)
        self.last = item
        metadata = item.usage_metadata
        if metadata is not None:
            self.metadata = metadata
        # The text's length, for an estimate of the output should the last chunk's counts never come.
        uncounted = self.uncounted
        uncounted.append(item)
        if len(uncounted) > _UNCOUNTED_LIMIT:
            self._count_uncounted()
        return False

    def _count_uncounted(self) -> None:
        for chunk in self.uncounted:
            self.chars += _text_chars(chunk)
        self.uncounted = []

    def received(self) -> bool:
        return self.last is not None  # a chunk may carry neither id nor model nor text

    def finish(self, error: BaseException | None) -> None:
        last = self.last
        reasons = _reasons(last) if last is not None else None
        usage = gemini_usage(self.metadata)
        # no finish reason and no output count: not the last chunk (a blocked prompt has no output)
        output_incomplete = (
            reasons is None
            and field(self.metadata, "candidates_token_count") is None
            and getattr(last, "prompt_feedback", None) is None
        )
        if usage is None or output_incomplete:  # (an estimate: the text's length is needed)
            self._count_uncounted()
        self.end_call(usage, error, output_incomplete=output_incomplete, finish_reasons=reasons)
