"""Audio tokens priced at the model's audio prices: OpenAI's audio chat models (`audio_tokens` in the
prompt and completion details) and Gemini's audio modality (`prompt_tokens_details`), read by the
usage readers, priced by `ModelPricing.cost`, settable in an overrides file; a model without audio
prices prices them at its text ones (as before)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from genai_meter._usage import Usage, gemini_usage, openai_chat_usage
from genai_meter.pricing import PriceBook, PricingError

from .conftest import at

NOW = at("2026-11-20")


def test_openai_audio_chat_priced_at_audio_rates(book: PriceBook) -> None:
    """gpt-audio: text $2.50 in / $10 out, audio $32 in / $64 out per million tokens."""
    pricing = book.resolve("openai", "gpt-audio")
    assert pricing is not None
    usage = Usage(input_tokens=1000, output_tokens=500, audio_input_tokens=800, audio_output_tokens=400)
    cost = pricing.cost(usage, NOW)
    assert cost.input_usd == pytest.approx((200 * 2.5 + 800 * 32) / 1e6, abs=1e-15)
    assert cost.output_usd == pytest.approx((100 * 10 + 400 * 64) / 1e6, abs=1e-15)
    assert cost.total_usd == pytest.approx(cost.input_usd + cost.output_usd, abs=1e-15)


def test_gemini_audio_input_priced_at_its_audio_rate(book: PriceBook) -> None:
    """gemini-2.5-flash: text input $0.30, audio input $1.00, output $2.50 per million tokens."""
    pricing = book.resolve("gcp.gemini", "gemini-2.5-flash")
    assert pricing is not None
    cost = pricing.cost(Usage(input_tokens=10_000, output_tokens=100, audio_input_tokens=9_000), NOW)
    assert cost.total_usd == pytest.approx((1_000 * 0.3 + 9_000 * 1.0 + 100 * 2.5) / 1e6, abs=1e-15)


def test_a_model_without_audio_prices_prices_audio_as_text(book: PriceBook) -> None:
    pricing = book.resolve("openai", "gpt-4o-mini")
    assert pricing is not None
    with_audio = Usage(input_tokens=1000, output_tokens=500, audio_input_tokens=600, audio_output_tokens=100)
    assert pricing.cost(with_audio, NOW) == pricing.cost(Usage(input_tokens=1000, output_tokens=500), NOW)


def test_audio_counts_beyond_their_totals_are_held_within_them(book: PriceBook) -> None:
    """Audio is within the uncached input and the output: never priced on more tokens than those."""
    pricing = book.resolve("openai", "gpt-audio")
    assert pricing is not None
    usage = Usage(input_tokens=100, output_tokens=10, audio_input_tokens=500, audio_output_tokens=50)
    assert pricing.cost(usage, NOW).total_usd == pytest.approx((100 * 32 + 10 * 64) / 1e6, abs=1e-15)


def test_openai_reader_takes_the_audio_details() -> None:
    raw = {
        "prompt_tokens": 1000,
        "completion_tokens": 500,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 800},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 400},
    }
    expected = Usage(input_tokens=1000, output_tokens=500, audio_input_tokens=800, audio_output_tokens=400)
    assert openai_chat_usage(raw) == expected
    as_object = SimpleNamespace(
        prompt_tokens=1000,
        completion_tokens=500,
        prompt_tokens_details=SimpleNamespace(cached_tokens=0, audio_tokens=800),
        completion_tokens_details=SimpleNamespace(reasoning_tokens=0, audio_tokens=400),
    )
    assert openai_chat_usage(as_object) == expected
    bad = {**raw, "prompt_tokens_details": {"audio_tokens": -5}}
    read = openai_chat_usage(bad)
    assert read is not None and read.audio_input_tokens == 0 and read.suspect


def test_gemini_reader_takes_the_audio_modality() -> None:
    from google.genai import types

    metadata = types.GenerateContentResponseUsageMetadata(
        prompt_token_count=10_000,
        candidates_token_count=100,
        prompt_tokens_details=[
            types.ModalityTokenCount(modality=types.MediaModality.TEXT, token_count=1_000),
            types.ModalityTokenCount(modality=types.MediaModality.AUDIO, token_count=9_000),
        ],
    )
    usage = gemini_usage(metadata)
    assert usage is not None and (usage.audio_input_tokens, usage.audio_output_tokens) == (9_000, 0)
    api_json = {"promptTokenCount": 50, "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": 40}]}
    parsed = gemini_usage(types.GenerateContentResponseUsageMetadata.model_validate(api_json))
    assert parsed is not None and parsed.audio_input_tokens == 40


def test_overrides_set_audio_prices(write: Callable[..., Path]) -> None:
    book = PriceBook.load(
        write(
            "models:\n  - {provider: openai, model: my-voice, input: 1, output: 2, input_audio: 10, output_audio: 20}\n"
        )
    )
    pricing = book.resolve("openai", "my-voice")
    assert pricing is not None
    usage = Usage(input_tokens=100, output_tokens=100, audio_input_tokens=100, audio_output_tokens=50)
    assert pricing.cost(usage, NOW).total_usd == pytest.approx((100 * 10 + 50 * 2 + 50 * 20) / 1e6, abs=1e-15)
    with pytest.raises(PricingError, match="input_audio"):
        PriceBook.load(write("models:\n  - {provider: openai, model: m, input: 1, input_audio: lots}\n", "bad.yaml"))
