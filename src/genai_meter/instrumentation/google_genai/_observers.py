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
from .._streams import CollectingObserver


def _reasons(response: Any) -> tuple[str, ...] | None:
    candidates = getattr(response, "candidates", None) or ()
    reasons = []
    for candidate in candidates:
        reason = getattr(candidate, "finish_reason", None)
        if reason is not None:
            reasons.append(str(getattr(reason, "value", reason)))
    return tuple(reasons) or None


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


class GenerateStreamObserver(CollectingObserver):
    """`GenerateContentResponse` chunks: the last `usage_metadata` seen is the request's usage.

    Nothing is read per chunk: the chunks are kept (see `CollectingObserver`) and read at the end,
    the ids from the first, the usage from the last that has one, the finish reasons from the last;
    their text only for an estimate, should the last chunk's counts never come. What `spill` lets
    go of is read first (the text counted, since it cannot be later)."""

    __slots__ = ("first", "last", "metadata")

    def __init__(self, call: Call, prompt_chars: Callable[[], int]) -> None:
        super().__init__(call, prompt_chars)
        # what the chunks let go of showed: the first of them, the last, the last usage
        self.first: Any = None
        self.last: Any = None
        self.metadata: Any = None

    def spill(self) -> None:
        kept = self.kept
        if kept:
            self._read_ends(kept)
            self._count_text(kept)  # (they are let go of: their text cannot be measured later)
            kept.clear()

    def _count_text(self, chunks: list[Any]) -> None:
        for chunk in chunks:
            self.chars += _text_chars(chunk)

    def _read_ends(self, chunks: list[Any]) -> None:
        """Note the first chunk, the last and the last usage among `chunks` (in the stream's order)."""
        if self.first is None:
            self.first = chunks[0]
        self.last = chunks[-1]
        for chunk in reversed(chunks):
            metadata = getattr(chunk, "usage_metadata", None)
            if metadata is not None:
                self.metadata = metadata
                return

    def received(self) -> bool:
        return bool(self.kept) or self.last is not None  # a chunk may carry neither id nor model nor text

    def finish(self, error: BaseException | None) -> None:
        kept = self.kept
        if kept:
            self._read_ends(kept)
        first = self.first
        if first is not None:
            self.model = getattr(first, "model_version", None)
            self.response_id = getattr(first, "response_id", None)
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
            self._count_text(kept)
        self.end_call(usage, error, output_incomplete=output_incomplete, finish_reasons=reasons)
