"""Model-id normalisation, provider fallbacks, the resolve cache and bundled data coverage."""

from __future__ import annotations

import json

import pytest

from genai_meter._usage import Usage
from genai_meter.pricing import ModelPricing, PriceBook, PricingError
from genai_meter.pricing._book import DATA_DIR, bundled_data
from genai_meter.pricing._ids import candidates

from .conftest import at


@pytest.mark.parametrize(
    ("provider", "model", "canonical", "price_provider"),
    [
        ("openai", "gpt-4o", "gpt-4o", "openai"),
        ("openai", "GPT-4o", "gpt-4o", "openai"),
        ("openai", " gpt-4o ", "gpt-4o", "openai"),
        ("openai", "gpt-4o-2024-08-06", "gpt-4o", "openai"),
        ("openai", "gpt-4o-2024-05-13", "gpt-4o-2024-05-13", "openai"),  # a snapshot priced on its own
        ("openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini", "openai"),
        ("openai", "openai/gpt-4o", "gpt-4o", "openai"),
        ("openai", "gpt-4.1-2025-04-14", "gpt-4.1", "openai"),
        ("openai", "gpt-4.1-mini", "gpt-4.1-mini", "openai"),
        ("openai", "gpt-4.1-nano-2025-04-14", "gpt-4.1-nano", "openai"),
        ("openai", "o3-mini-2025-01-31", "o3-mini", "openai"),
        ("openai", "o1-2024-12-17", "o1", "openai"),
        ("openai", "o4-mini-2025-04-16", "o4-mini", "openai"),
        ("openai", "gpt-5-2025-08-07", "gpt-5", "openai"),
        ("openai", "gpt-5-mini", "gpt-5-mini", "openai"),
        ("openai", "gpt-5-nano", "gpt-5-nano", "openai"),
        ("openai", "gpt-4-0613", "gpt-4", "openai"),
        ("openai", "ft:gpt-4o-mini-2024-07-18:acme::abc123", "ft:gpt-4o-mini", "openai"),
        ("openai", "ft:gpt-4.1-2025-04-14:acme:custom:xyz", "ft:gpt-4.1", "openai"),
        ("azure.ai.openai", "gpt-4o-mini-2024-07-18.ft-0123abcd", "ft:gpt-4o-mini", "openai"),
        ("anthropic", "claude-3-5-sonnet-20241022", "claude-3-5-sonnet", "anthropic"),
        ("anthropic", "claude-3-5-sonnet-latest", "claude-3-5-sonnet", "anthropic"),
        ("anthropic", "claude-3-5-haiku-latest", "claude-3-5-haiku", "anthropic"),
        ("anthropic", "claude-3-7-sonnet-20250219", "claude-3-7-sonnet", "anthropic"),
        ("anthropic", "claude-3-opus-20240229", "claude-3-opus", "anthropic"),
        ("anthropic", "claude-sonnet-4-20250514", "claude-sonnet-4-0", "anthropic"),
        ("anthropic", "claude-opus-4-20250514", "claude-opus-4-0", "anthropic"),
        ("anthropic", "claude-opus-4-1-20250805", "claude-opus-4-1", "anthropic"),
        ("anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5", "anthropic"),
        ("anthropic", "claude-haiku-4-5-20251001", "claude-haiku-4-5", "anthropic"),
        ("anthropic", "anthropic/claude-3.5-sonnet", "claude-3-5-sonnet", "anthropic"),
        ("aws.bedrock", "anthropic.claude-3-5-sonnet-20241022-v2:0", "claude-3-5-sonnet", "anthropic"),
        ("aws.bedrock", "us.anthropic.claude-3-7-sonnet-20250219-v1:0", "claude-3-7-sonnet", "anthropic"),
        ("aws.bedrock", "eu.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5", "anthropic"),
        (
            "aws.bedrock",
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0",
            "claude-3-haiku",
            "anthropic",
        ),
        ("aws.bedrock", "us.amazon.nova-pro-v1:0", "amazon.nova-pro-v1:0", "aws.bedrock"),
        ("gcp.vertex_ai", "claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet", "anthropic"),
        ("gcp.vertex_ai", "claude-sonnet-4@20250514", "claude-sonnet-4-0", "anthropic"),
        ("gcp.vertex_ai", "claude-opus-4-1@20250805", "claude-opus-4-1", "anthropic"),
        ("gcp.vertex_ai", "gemini-1.5-pro-002", "gemini-1.5-pro", "gcp.gemini"),
        (
            "gcp.vertex_ai",
            "projects/p/locations/us-central1/publishers/google/models/gemini-2.0-flash-001",
            "gemini-2.0-flash",
            "gcp.gemini",
        ),
        ("gcp.gemini", "models/gemini-2.5-pro", "gemini-2.5-pro", "gcp.gemini"),
        ("gcp.gemini", "gemini-2.5-flash", "gemini-2.5-flash", "gcp.gemini"),
        ("gcp.gemini", "gemini-2.5-flash-preview-05-20", "gemini-2.5-flash-preview", "gcp.gemini"),
        ("azure.ai.openai", "gpt-4o", "gpt-4o", "openai"),
        ("az.ai.openai", "gpt-4o-mini", "gpt-4o-mini", "openai"),  # legacy gen_ai.system value
        ("openrouter", "openai/gpt-4o", "openai/gpt-4o", "openrouter"),  # OpenRouter's own entry
        ("openrouter", "openai/gpt-4o-2024-08-06", "openai/gpt-4o", "openrouter"),
        ("openrouter", "openai/text-embedding-3-small", "text-embedding-3-small", "openai"),  # upstream price
        ("openrouter", "anthropic/claude-3-5-sonnet-20241022", "claude-3-5-sonnet", "anthropic"),
        ("groq", "llama-3.3-70b-versatile", "llama-3.3-70b-versatile", "groq"),
        ("groq", "openai/gpt-oss-120b", "openai/gpt-oss-120b", "groq"),
        ("deepseek", "deepseek-reasoner", "deepseek-reasoner", "deepseek"),
        ("mistral_ai", "mistral-large-2411", "mistral-large", "mistral_ai"),
        ("mistral", "mistral-small-latest", "mistral-small", "mistral_ai"),
        ("x_ai", "grok-4-0709", "grok-4-0709", "x_ai"),
        ("xai", "grok-3-mini", "grok-3-mini", "x_ai"),
        (
            "together",
            "meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo",
            "meta-llama/meta-llama-3.1-8b-instruct-turbo",
            "together",
        ),
    ],
)
def test_normalisation(
    book: PriceBook, provider: str, model: str, canonical: str, price_provider: str
) -> None:
    pricing = book.resolve(provider, model)
    assert pricing is not None, f"{provider} {model} unpriced"
    assert (pricing.model, pricing.price_provider) == (canonical, price_provider)


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "no-such-model"),
        ("openai", ""),
        ("openai", "ft:gpt-5-mini-2025-08-07:acme::x"),  # a fine-tune never falls back to its base model
        ("openai", "claude-3-5-sonnet"),  # no borrowing across unrelated providers
        ("ollama", "llama3"),  # a local model is unpriced until the overrides price it
        ("groq", "gpt-4o"),
        ("no-such-provider", "gpt-4o"),
    ],
)
def test_unpriced_is_none(book: PriceBook, provider: str, model: str) -> None:
    assert book.resolve(provider, model) is None


def test_resolve_is_cached(book: PriceBook) -> None:
    first = book.resolve("openai", "gpt-4o-2024-08-06")
    assert first is not None
    assert book.resolve("openai", "gpt-4o-2024-08-06") is first
    assert book.resolve("openai", "gpt-4o") is first  # one compiled pricing per (provider, model entry)
    assert ("openai", "gpt-4o-2024-08-06") in book._cache
    assert book.resolve("nobody", "nothing") is None
    assert book._cache[("nobody", "nothing")] is None  # misses are cached too


def test_provider_is_the_callers_and_price_provider_the_lists(book: PriceBook) -> None:
    pricing = book.resolve("azure.ai.openai", "gpt-4o")
    assert isinstance(pricing, ModelPricing)
    assert (pricing.provider, pricing.price_provider, pricing.model) == (
        "azure.ai.openai",
        "openai",
        "gpt-4o",
    )


def test_candidates_order() -> None:
    assert candidates("gpt-4o-2024-08-06") == ["gpt-4o-2024-08-06", "gpt-4o"]
    assert candidates("ft:gpt-4o-mini-2024-07-18:org::id") == [
        "ft:gpt-4o-mini-2024-07-18:org::id",
        "ft:gpt-4o-mini-2024-07-18",
        "ft:gpt-4o-mini",
    ]
    assert "llama3-70b" not in candidates("llama3-70b-8192")  # 8192 is a context size, not a date
    assert candidates("openai/gpt-4o")[:2] == ["openai/gpt-4o", "gpt-4o"]


def test_every_matching_suffix_pattern_is_tried() -> None:
    # `-v2:1` is a Bedrock version and `:1` a tag: both strippings are candidates, longest first.
    assert candidates("anthropic.claude-v2:1") == [
        "anthropic.claude-v2:1", "anthropic.claude-v2", "anthropic.claude", "claude-v2:1", "claude-v2", "claude",
    ]
    assert candidates("claude-3-5-sonnet-v2@20241022")[-1] == "claude-3-5-sonnet"


@pytest.mark.parametrize(
    ("model", "canonical", "cost"),
    [
        ("anthropic.claude-v2:1", "claude-2", (1000 * 8 + 1000 * 24) / 1e6),
        ("us.anthropic.claude-v2:1", "claude-2", (1000 * 8 + 1000 * 24) / 1e6),
        # in-region prices (1.1 x global), see test_bedrock_regional.py
        ("in.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5", (1000 * 1.1 + 1000 * 5.5) / 1e6),
        ("in.moonshotai.kimi-k3", "moonshotai.kimi-k3", (1000 * 3.3 + 1000 * 16.5) / 1e6),
    ],
)
def test_bedrock_versions_and_the_india_region(book: PriceBook, model: str, canonical: str, cost: float) -> None:
    pricing = book.resolve("aws.bedrock", model)
    assert pricing is not None and pricing.model == canonical
    usage = Usage(input_tokens=1000, output_tokens=1000)
    assert pricing.cost(usage, at("2026-11-20")).total_usd == pytest.approx(cost, abs=1e-9)


REQUIRED = (
    [
        ("openai", m)
        for m in (
            "gpt-4o",
            "gpt-4o-mini",
            "gpt-4.1",
            "gpt-4.1-mini",
            "gpt-4.1-nano",
            "o1",
            "o1-mini",
            "o3",
            "o3-mini",
            "o4-mini",
            "gpt-5",
            "gpt-5-mini",
            "gpt-5-nano",
            "gpt-4-turbo",
            "gpt-3.5-turbo",
            "text-embedding-3-small",
            "text-embedding-3-large",
            "text-embedding-ada-002",
        )
    ]
    + [
        ("anthropic", m)
        for m in (
            "claude-3-haiku",
            "claude-3-opus",
            "claude-3-5-haiku",
            "claude-3-5-sonnet",
            "claude-3-7-sonnet",
            "claude-sonnet-4-0",
            "claude-opus-4-0",
            "claude-opus-4-1",
            "claude-sonnet-4-5",
            "claude-haiku-4-5",
            "claude-opus-4-5",
        )
    ]
    + [
        ("gcp.gemini", m)
        for m in (
            "gemini-1.5-pro",
            "gemini-1.5-flash",
            "gemini-2.0-flash",
            "gemini-2.5-pro",
            "gemini-2.5-flash",
            "gemini-2.5-flash-lite",
        )
    ]
    + [
        ("groq", "llama-3.1-8b-instant"),
        ("groq", "llama-3.3-70b-versatile"),
        ("deepseek", "deepseek-chat"),
        ("deepseek", "deepseek-reasoner"),
        ("mistral_ai", "mistral-large"),
        ("mistral_ai", "mistral-small"),
        ("mistral_ai", "codestral"),
        ("together", "meta-llama/llama-3.3-70b-instruct-turbo"),
        ("x_ai", "grok-3"),
        ("x_ai", "grok-4-0709"),
        ("openrouter", "openai/gpt-4o"),
        ("openrouter", "anthropic/claude-sonnet-4.5"),
        ("openrouter", "google/gemini-2.5-pro"),
        ("openrouter", "meta-llama/llama-3.3-70b-instruct"),
    ]
)


@pytest.mark.parametrize(("provider", "model"), REQUIRED)
def test_bundled_coverage(book: PriceBook, provider: str, model: str) -> None:
    pricing = book.resolve(provider, model)
    assert pricing is not None
    assert pricing.price_provider == provider and pricing.model == model  # an entry of its own
    rates = pricing.rates(1.8e9)
    assert rates[0] > 0


def test_anthropic_cache_write_prices_and_long_context(book: PriceBook) -> None:
    for model in ("claude-3-5-sonnet", "claude-3-7-sonnet", "claude-sonnet-4-5", "claude-opus-4-1"):
        pricing = book.resolve("anthropic", model)
        assert pricing is not None
        latest = pricing.periods[-1].prices
        assert {"cache_read", "cache_write", "cache_write_1h"} <= set(latest), model
        assert latest["cache_write_1h"] == 2 * latest["input"]
        assert latest["cache_write"] == 1.25 * latest["input"]
    sonnet = book.resolve("anthropic", "claude-sonnet-4-5")
    assert sonnet is not None and sonnet.periods[0].tiers[0].above_input_tokens == 200_000


def test_bundled_header_keeps_the_licence() -> None:
    document = json.loads((DATA_DIR / "genai_prices.json").read_text("utf-8"))
    header = document["header"]
    assert "MIT" in header["license"] and "Pydantic" in header["license"]
    assert header["source"] == "https://github.com/pydantic/genai-prices"


def test_bundled_data_matches_the_importer() -> None:
    """The committed JSON is what tools/import_genai_prices.py makes from the installed genai-prices."""
    pytest.importorskip("genai_prices")
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "tools" / "import_genai_prices.py"
    spec = importlib.util.spec_from_file_location("import_genai_prices", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = json.loads((DATA_DIR / "genai_prices.json").read_text("utf-8"))
    if committed["header"]["source_version"] != module._genai_prices_version():
        pytest.skip("installed genai-prices differs from the one the data was imported from")
    assert module.convert(committed["header"]["version"]) == committed


def test_version_string(book: PriceBook) -> None:
    assert book.version == f"bundled-{bundled_data().version}"
    assert book.version.startswith("bundled-20")


def test_broken_bundled_file_is_reported_with_its_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    from pathlib import Path

    import genai_meter.pricing._book as book_module

    assert isinstance(tmp_path, Path)
    (tmp_path / "bad.json").write_text(
        '{"header": {"version": "2026-01-01"},\n "providers": {"x": {"models": {"m": {"input": -1}}}}}\n'
    )
    monkeypatch.setattr(book_module, "DATA_DIR", tmp_path)
    book_module.bundled_data.cache_clear()
    try:
        with pytest.raises(
            PricingError, match=r"bad\.json:2: providers\.x\.models\.m\.input: expected a number >= 0, got -1"
        ):
            book_module.bundled_data()
    finally:
        book_module.bundled_data.cache_clear()
