"""Exact costs (to 1e-9) for bundled models and token mixes, tiers, dated periods, service tiers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from genai_meter import names
from genai_meter._usage import Usage
from genai_meter.pricing import Cost, PriceBook, provider_cost

from .conftest import at

NOW = at("2026-11-20")


def price(book: PriceBook, provider: str, model: str, usage: Usage, when: float = NOW, tier: str | None = None) -> Cost:
    pricing = book.resolve(provider, model)
    assert pricing is not None, f"{provider}/{model} unpriced"
    return pricing.cost(usage, when, tier) if tier is not None else pricing.cost(usage, when)


def check(cost: Cost, input_usd: float, read: float, write: float, output: float) -> None:
    assert cost.input_usd == pytest.approx(input_usd, abs=1e-9)
    assert cost.cache_read_usd == pytest.approx(read, abs=1e-9)
    assert cost.cache_write_usd == pytest.approx(write, abs=1e-9)
    assert cost.output_usd == pytest.approx(output, abs=1e-9)
    assert cost.total_usd == pytest.approx(input_usd + read + write + output, abs=1e-9)


def test_plain_input_at_2_50_per_million(book: PriceBook) -> None:
    cost = price(book, "openai", "gpt-4o", Usage(input_tokens=1000))
    check(cost, 0.0025, 0, 0, 0)
    assert cost.source == names.COST_SOURCE_PRICING
    assert cost.model == "gpt-4o"
    assert cost.pricing_version == book.version


def test_openai_cached_input_is_not_double_billed(book: PriceBook) -> None:
    usage = Usage(input_tokens=2000, output_tokens=500, cache_read_tokens=1024)
    # 976 uncached at $2.50, 1024 cached at $1.25, 500 output at $10
    check(price(book, "openai", "gpt-4o", usage), 0.00244, 0.00128, 0, 0.005)
    check(price(book, "openai", "gpt-4o-mini", usage), 976 * 0.15 / 1e6, 1024 * 0.075 / 1e6, 0, 500 * 0.6 / 1e6)


def test_reasoning_tokens_are_billed_as_output(book: PriceBook) -> None:
    usage = Usage(input_tokens=1000, output_tokens=5000, reasoning_tokens=4000)
    check(price(book, "openai", "o1", usage), 0.015, 0, 0, 0.3)
    check(price(book, "openai", "o4-mini", usage), 0.0011, 0, 0, 0.022)


def test_embedding_has_no_output_price(book: PriceBook) -> None:
    check(price(book, "openai", "text-embedding-3-small", Usage(input_tokens=1_000_000)), 0.02, 0, 0, 0)
    check(price(book, "openai", "text-embedding-3-large", Usage(input_tokens=500_000)), 0.065, 0, 0, 0)
    check(price(book, "openai", "text-embedding-ada-002", Usage(input_tokens=10_000)), 0.001, 0, 0, 0)


def test_anthropic_cache_read_and_5m_and_1h_writes(book: PriceBook) -> None:
    usage = Usage(
        input_tokens=10_000,
        output_tokens=400,
        cache_read_tokens=5000,
        cache_write_tokens=3000,
        cache_write_1h_tokens=1000,
    )
    # uncached 2000 at $3, reads 5000 at $0.30, writes 2000 at $3.75 + 1000 at $6, output at $15
    check(price(book, "anthropic", "claude-3-5-sonnet-20241022", usage), 0.006, 0.0015, 0.0135, 0.006)
    # Haiku 3: $0.25 in, $0.03 read, $0.30 write 5m, $0.50 write 1h, $1.25 out
    check(price(book, "anthropic", "claude-3-haiku-20240307", usage), 0.0005, 0.00015, 0.0011, 0.0005)


def test_long_context_tier_applies_to_the_whole_call_above_threshold(book: PriceBook) -> None:
    at_limit = Usage(input_tokens=200_000, output_tokens=1000)
    above = Usage(input_tokens=200_001, output_tokens=1000)
    check(price(book, "anthropic", "claude-sonnet-4-5", at_limit), 0.6, 0, 0, 0.015)
    check(price(book, "anthropic", "claude-sonnet-4-5", above), 1.200006, 0, 0, 0.0225)


def test_long_context_tier_with_cache(book: PriceBook) -> None:
    usage = Usage(
        input_tokens=250_000,
        output_tokens=1000,
        cache_read_tokens=100_000,
        cache_write_tokens=20_000,
        cache_write_1h_tokens=5000,
    )
    # tier prices: $6 in, $0.60 read, $7.50 write 5m, $12 write 1h, $22.50 out
    check(price(book, "anthropic", "claude-sonnet-4-5-20250929", usage), 0.78, 0.06, 0.1725, 0.0225)


def test_gemini_long_context_tiers(book: PriceBook) -> None:
    usage = Usage(input_tokens=300_000, output_tokens=2000, cache_read_tokens=100_000)
    check(price(book, "gcp.gemini", "gemini-2.5-pro", usage), 0.5, 0.025, 0, 0.03)
    small = Usage(input_tokens=100_000, output_tokens=2000, cache_read_tokens=50_000)
    check(price(book, "gcp.gemini", "gemini-2.5-pro", small), 0.0625, 0.00625, 0, 0.02)
    # Gemini 1.5 Pro's tier starts above 128k prompt tokens
    check(price(book, "gcp.gemini", "gemini-1.5-pro", Usage(input_tokens=128_000)), 0.16, 0, 0, 0)
    check(price(book, "gcp.gemini", "gemini-1.5-pro", Usage(input_tokens=128_001)), 0.3200025, 0, 0, 0)


def test_dated_price_change_before_and_after(book: PriceBook) -> None:
    usage = Usage(input_tokens=1000, output_tokens=1000)
    change = at("2025-06-10", hour=0)
    check(price(book, "openai", "o3", usage, change - 1), 0.01, 0, 0, 0.04)  # $10 / $40
    check(price(book, "openai", "o3", usage, change), 0.002, 0, 0, 0.008)  # $2 / $8
    check(price(book, "openai", "o3", usage, at("2020-01-01")), 0.01, 0, 0, 0.04)  # earliest also covers before


def test_dated_change_that_removes_a_tier(book: PriceBook) -> None:
    usage = Usage(input_tokens=300_000)
    check(price(book, "anthropic", "claude-sonnet-4-6", usage, at("2026-03-12")), 1.8, 0, 0, 0)
    check(price(book, "anthropic", "claude-sonnet-4-6", usage, at("2026-03-13")), 0.9, 0, 0, 0)


def test_service_tiers(book: PriceBook) -> None:
    usage = Usage(input_tokens=1000, output_tokens=1000, cache_read_tokens=200)
    check(price(book, "openai", "gpt-5", usage, tier="flex"), 0.0005, 0.0000125, 0, 0.005)
    check(price(book, "openai", "gpt-5", usage, tier="priority"), 0.002, 0.00005, 0, 0.02)
    # batch overlay gives only input/output: cached input keeps the standard $1.25
    check(price(book, "openai", "gpt-4o", usage, tier="batch"), 0.001, 0.00025, 0, 0.005)
    standard = price(book, "openai", "gpt-5", usage)
    for name in ("default", "auto", "no-such-tier"):
        assert price(book, "openai", "gpt-5", usage, tier=name) == standard


def test_provider_fallbacks_price_like_first_party(book: PriceBook) -> None:
    usage = Usage(input_tokens=1000, output_tokens=100)
    reference = price(book, "anthropic", "claude-3-5-sonnet", usage)
    bedrock = price(book, "aws.bedrock", "us.anthropic.claude-3-5-sonnet-20241022-v2:0", usage)
    vertex = price(book, "gcp.vertex_ai", "claude-3-5-sonnet-v2@20241022", usage)
    assert bedrock.total_usd == vertex.total_usd == reference.total_usd == pytest.approx(0.0045, abs=1e-9)
    azure = price(book, "azure.ai.openai", "gpt-4o-2024-11-20", usage)
    assert azure.total_usd == pytest.approx(0.0035, abs=1e-9)
    assert azure.model == "gpt-4o"


def test_openai_compatible_providers(book: PriceBook) -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert price(book, "groq", "llama-3.3-70b-versatile", usage).total_usd == pytest.approx(0.59 + 0.79)
    assert price(book, "deepseek", "deepseek-chat", usage).total_usd == pytest.approx(0.27 + 1.1)
    assert price(book, "x_ai", "grok-3", usage).total_usd == pytest.approx(3 + 15)
    assert price(book, "mistral_ai", "mistral-large-latest", usage).total_usd == pytest.approx(2 + 6)
    together = price(book, "together", "meta-llama/Llama-3.3-70B-Instruct-Turbo", usage)
    assert together.total_usd == pytest.approx(0.88 + 0.88)
    assert price(book, "openrouter", "openai/gpt-4o", usage).total_usd == pytest.approx(2.5 + 10)


def test_suspect_and_inconsistent_counts_never_go_negative(book: PriceBook) -> None:
    # more cached than input (a provider bug): uncached clamps to 0; 1h writes clamp to all writes
    usage = Usage(input_tokens=100, cache_read_tokens=150, cache_write_tokens=10, cache_write_1h_tokens=50)
    cost = price(book, "anthropic", "claude-3-5-sonnet", usage)
    check(cost, 0, 150 * 0.3 / 1e6, 10 * 6 / 1e6, 0)


def test_estimated_usage_marks_the_source(book: PriceBook) -> None:
    cost = price(book, "openai", "gpt-4o", Usage(input_tokens=1000, estimated=True))
    assert cost.source == names.COST_SOURCE_ESTIMATED
    assert cost.total_usd == pytest.approx(0.0025, abs=1e-9)


def test_provider_cost() -> None:
    cost = provider_cost(0.0123, "bundled-2026-11-22", "openai/gpt-4o")
    assert cost == Cost(0.0, 0.0, 0.0, 0.0, 0.0123, names.COST_SOURCE_PROVIDER, "bundled-2026-11-22", "openai/gpt-4o")


def test_fast_cost_equals_a_normally_built_cost(book: PriceBook) -> None:
    cost = price(book, "openai", "gpt-4o", Usage(input_tokens=1000, output_tokens=10))
    rebuilt = Cost(
        cost.input_usd,
        cost.cache_read_usd,
        cost.cache_write_usd,
        cost.output_usd,
        cost.total_usd,
        cost.source,
        cost.pricing_version,
        cost.model,
    )
    assert cost == rebuilt and hash(cost) == hash(rebuilt)
    with pytest.raises(AttributeError):
        cost.total_usd = 0  # type: ignore[misc]


def test_override_periods_tiers_and_service_tiers(write: Callable[..., Path]) -> None:
    """The logic on data we control: dated periods, multi-level tiers, tier inheritance, overlays."""
    path = write(
        """
models:
  acme-large:
    provider: acme
    periods:
      - input: 1
        output: 2
        tiers:
          - {above_input_tokens: 1000, input: 10}
          - {above_input_tokens: 2000, output: 40}
        service_tiers:
          batch: {multiplier: 0.5}
          flex: {input: 0.5}
      - from: 2025-01-01
        input: 3
        cache_read: 0.3
        cache_write: 4
        output: 6
"""
    )
    book = PriceBook.load(path)
    pricing = book.resolve("acme", "acme-large")
    assert pricing is not None
    old = at("2024-06-01")
    check(pricing.cost(Usage(input_tokens=1000, output_tokens=1000), old), 0.001, 0, 0, 0.002)
    check(pricing.cost(Usage(input_tokens=1001, output_tokens=1000), old), 0.01001, 0, 0, 0.002)
    # above 2000: output from the second tier, input kept from the first
    check(pricing.cost(Usage(input_tokens=2001, output_tokens=1000), old), 0.02001, 0, 0, 0.04)
    check(pricing.cost(Usage(input_tokens=2001, output_tokens=1000), old, "batch"), 0.010005, 0, 0, 0.02)
    # flex overlays only input; output (and its tiers) stay standard
    check(pricing.cost(Usage(input_tokens=2001, output_tokens=1000), old, "flex"), 0.0010005, 0, 0, 0.04)
    new = at("2025-01-01", hour=0)
    usage = Usage(
        input_tokens=5000,
        output_tokens=100,
        cache_read_tokens=1000,
        cache_write_tokens=1000,
        cache_write_1h_tokens=500,
    )
    # second period: no tiers; 1h writes fall back to the 5m price
    check(pricing.cost(usage, new), 0.009, 0.0003, 0.004, 0.0006)
    check(pricing.cost(usage, new, "batch"), 0.009, 0.0003, 0.004, 0.0006)  # no service tiers any more


@pytest.mark.parametrize(
    ("model", "standard", "batch"),
    [
        ("text-embedding-3-small", 0.02, 0.01),
        ("text-embedding-3-large", 0.13, 0.065),
        ("text-embedding-ada-002", 0.1, 0.05),
    ],
)
def test_openai_embeddings_through_the_batch_api_are_half_price(
    book: PriceBook, model: str, standard: float, batch: float
) -> None:
    """genai-prices has no batch price for them; the importer adds OpenAI's (half the input price)."""
    pricing = book.resolve("openai", model)
    assert pricing is not None
    usage = Usage(input_tokens=1_000_000)
    assert pricing.cost(usage, at("2026-06-01")).total_usd == pytest.approx(standard, abs=1e-12)
    assert pricing.cost(usage, at("2026-06-01"), "batch").total_usd == pytest.approx(batch, abs=1e-12)
