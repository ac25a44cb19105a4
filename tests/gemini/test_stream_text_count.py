"""A Gemini stream's text is measured only when an estimate needs it (its final counts never came),
and a long stream keeps a bounded number of its chunks alive for that."""

from __future__ import annotations

from typing import Any

from google.genai import types

from genai_meter.instrumentation.google_genai import _observers


class _Call:
    def __init__(self) -> None:
        self.finished: list[dict[str, Any]] = []

    def finish(self, **outcome: Any) -> None:
        self.finished.append(outcome)


def _chunk(text: str, metadata: types.GenerateContentResponseUsageMetadata | None = None) -> Any:
    return types.GenerateContentResponse(
        candidates=[types.Candidate(content=types.Content(role="model", parts=[types.Part(text=text)]))],
        usage_metadata=metadata,
        model_version="gemini-2.5-flash",
        response_id="r-1",
    )


def test_a_long_stream_cut_short_is_estimated_from_all_its_text_with_few_chunks_held() -> None:
    call = _Call()
    observer = _observers.GenerateStreamObserver(call, lambda: 400)  # type: ignore[arg-type]
    held = 0
    for _ in range(1000):
        observer.observe(_chunk("abcdefgh"))
        held = max(held, len(observer.kept))
    observer.finish(None)
    assert held <= observer.KEPT_LIMIT + 1
    [outcome] = call.finished
    usage = outcome["usage"]
    assert (usage.input_tokens, usage.output_tokens, usage.estimated) == (100, 2000, True)


def test_a_stream_with_its_final_counts_measures_no_text(monkeypatch: Any) -> None:
    measured: list[Any] = []
    monkeypatch.setattr(_observers, "_text_chars", lambda chunk: measured.append(chunk) or 0)
    call = _Call()
    observer = _observers.GenerateStreamObserver(call, lambda: 400)  # type: ignore[arg-type]
    for _ in range(10):
        observer.observe(_chunk("abcd", types.GenerateContentResponseUsageMetadata(prompt_token_count=120)))
    final = _chunk("", types.GenerateContentResponseUsageMetadata(prompt_token_count=120, candidates_token_count=30))
    final.candidates[0].finish_reason = types.FinishReason.STOP  # type: ignore[index]
    observer.observe(final)
    observer.finish(None)
    assert measured == []
    [outcome] = call.finished
    usage = outcome["usage"]
    assert (usage.input_tokens, usage.output_tokens, usage.estimated) == (120, 30, False)
