"""Bedrock: a call through a geographic (`us.`, `eu.`, `jp.`, ...) or in-region (no prefix) id is
billed at the regional price, about 10 % above the `global.` cross-region price; a model with one
price keeps it for every prefix."""

from __future__ import annotations

import pytest

from genai_meter._usage import Usage
from genai_meter.pricing import PriceBook, PricingError, _ids
from genai_meter.pricing._source import parse_json
from genai_meter.pricing._spec import BundledData, bundled

from .conftest import at

WHEN = at("2026-11-20")
SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA = "amazon.nova-2-lite-v1:0"
# 70k uncached input, 20k cache reads, 6k 5-minute and 4k 1-hour cache writes, 100k output
MIXED = Usage(
    input_tokens=100_000,
    output_tokens=100_000,
    cache_read_tokens=20_000,
    cache_write_tokens=10_000,
    cache_write_1h_tokens=4_000,
)
PLAIN = Usage(input_tokens=100_000, output_tokens=100_000)


def total(book: PriceBook, model: str, usage: Usage = PLAIN, service_tier: str | None = None) -> float:
    pricing = book.resolve("aws.bedrock", model)
    assert pricing is not None, f"{model} unpriced"
    return pricing.cost(usage, WHEN, service_tier).total_usd


@pytest.mark.parametrize(
    ("model", "usd"),
    [
        # Claude (Anthropic's list; regional = 1.1 x): input 3.3, cache read 0.33, writes 4.125 / 6.6, output 16.5
        (f"us.{SONNET}", 0.07 * 3.3 + 0.02 * 0.33 + 0.006 * 4.125 + 0.004 * 6.6 + 0.1 * 16.5),  # 1.93875
        (f"eu.{SONNET}", 1.93875),
        (f"apac.{SONNET}", 1.93875),
        (SONNET, 1.93875),  # in-region, no prefix
        ("claude-sonnet-4-5", 1.93875),  # a bare Anthropic id sent to Bedrock
        (f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.{SONNET}", 1.93875),
        (f"global.{SONNET}", 0.07 * 3 + 0.02 * 0.3 + 0.006 * 3.75 + 0.004 * 6 + 0.1 * 15),  # 1.7625
        (f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/global.{SONNET}", 1.7625),
        # Nova 2 Lite (Bedrock's own list): regional input 0.33, cache read 0.0825, output 2.75
        (f"us.{NOVA}", 0.08 * 0.33 + 0.02 * 0.0825 + 0.1 * 2.75),  # 0.30305
        (NOVA, 0.30305),
        (f"ca.{NOVA}", 0.30305),  # a prefix genai-prices' regional entry does not list: still regional
        (f"global.{NOVA}", 0.08 * 0.3 + 0.02 * 0.075 + 0.1 * 2.5),  # 0.2755
        ("global.amazon.nova-2-lite", 0.2755),
    ],
)
def test_regional_and_global_prices(book: PriceBook, model: str, usd: float) -> None:
    assert total(book, model, MIXED) == pytest.approx(usd, abs=1e-9)


@pytest.mark.parametrize(
    ("model", "usd"),
    [
        (f"us.{SONNET}", 1.98),
        (f"global.{SONNET}", 1.80),
        (f"us.{NOVA}", 0.308),
        (f"global.{NOVA}", 0.28),
        ("moonshotai.kimi-k3", 1.98),  # bare in-region id
        ("jp.moonshotai.kimi-k3", 1.98),
        ("global.moonshotai.kimi-k3", 1.80),
        ("us.openai.gpt-5.6-sol", 2.64),
        ("global.openai.gpt-5.6-sol", 2.40),
    ],
)
def test_reviewers_figures(book: PriceBook, model: str, usd: float) -> None:
    """100k input + 100k output tokens, as in the review."""
    assert total(book, model) == pytest.approx(usd, abs=1e-9)


@pytest.mark.parametrize(
    "model",
    [
        "amazon.nova-pro-v1:0",  # Bedrock's own list, one price
        "anthropic.claude-3-5-haiku-20241022-v1:0",  # Claude with a regional price equal to Anthropic's
        "anthropic.claude-v2:1",  # Claude that genai-prices does not list for Bedrock at all
    ],
)
def test_a_model_with_one_price_has_it_for_every_prefix(book: PriceBook, model: str) -> None:
    prices = {total(book, f"{prefix}{model}") for prefix in ("", "us.", "eu.", "ca.", "in.", "global.")}
    assert len(prices) == 1
    expected = {"amazon.nova-pro-v1:0": 0.4, "anthropic.claude-3-5-haiku-20241022-v1:0": 0.48}
    if model in expected:
        assert prices.pop() == pytest.approx(expected[model], abs=1e-9)


def test_the_regional_claude_factor_covers_tiers_and_service_tiers(book: PriceBook) -> None:
    """Claude keeps Anthropic's long-context tier and batch prices on Bedrock, times 1.1 in-region."""
    long = Usage(input_tokens=300_000, output_tokens=10_000)
    assert total(book, f"global.{SONNET}", long) == pytest.approx(0.3 * 6 + 0.01 * 22.5, abs=1e-9)
    assert total(book, f"us.{SONNET}", long) == pytest.approx(0.3 * 6.6 + 0.01 * 24.75, abs=1e-9)
    assert total(book, f"global.{SONNET}", PLAIN, "batch") == pytest.approx(0.90, abs=1e-9)
    assert total(book, f"us.{SONNET}", PLAIN, "batch") == pytest.approx(0.99, abs=1e-9)


def test_the_markup_is_not_a_discount_and_resolution_stays_cached(book: PriceBook) -> None:
    regional = book.resolve("aws.bedrock", f"us.{SONNET}")
    global_ = book.resolve("aws.bedrock", f"global.{SONNET}")
    assert regional is not None and global_ is not None
    assert regional is not global_ and regional.spec is global_.spec  # one entry, two compiled prices
    assert (regional.model, regional.price_provider) == ("claude-sonnet-4-5", "anthropic")
    assert (regional.discount, regional.markup, global_.markup) == (1.0, 1.1, 1.0)
    assert book.resolve("aws.bedrock", f"us.{SONNET}") is regional
    assert book.resolve("aws.bedrock", f"eu.{SONNET}") is regional
    direct = book.resolve("anthropic", "claude-sonnet-4-5")
    assert direct is not None and direct.markup == 1.0  # the first-party price is untouched


def test_overrides_under_bedrock_and_discounts(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "prices.yaml"
    path.write_text(
        "models:\n"
        "  claude-sonnet-4-5: {provider: aws.bedrock, input: 2, output: 10}\n"
        "discounts:\n"
        "  aws.bedrock: {models: {amazon.nova-2-lite-v1:0: 0.5, global.amazon.nova-2-lite-v1:0: 0.8}}\n",
        encoding="utf-8",
    )
    book = PriceBook.load(path)
    # a price the user set for Bedrock itself is not marked up
    assert total(book, f"us.{SONNET}") == pytest.approx(1.2, abs=1e-9)
    assert total(book, f"global.{SONNET}") == pytest.approx(1.2, abs=1e-9)
    # the regional and global entries are discounted by their own ids
    assert total(book, f"us.{NOVA}") == pytest.approx(0.154, abs=1e-9)
    assert total(book, f"global.{NOVA}") == pytest.approx(0.224, abs=1e-9)


def test_is_global() -> None:
    assert _ids.is_global(f"global.{SONNET}")
    assert _ids.is_global(f" GLOBAL.{SONNET}")
    assert _ids.is_global(f"arn:aws:bedrock:us-east-1:1:inference-profile/global.{SONNET}")
    for model in (SONNET, f"us.{SONNET}", f"regional.{SONNET}", f"arn:aws:bedrock:us-east-1:1:x/us.{SONNET}"):
        assert not _ids.is_global(model)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"anthropic": {"claude-sonnet-4-5": 0}}', "expected a number > 0, got 0"),
        ('{"anthropic": {"claude-sonnet-4-5": "x"}}', "expected a number >= 0"),
        ('{"anthropic": [1.1]}', "expected a mapping"),
    ],
)
def test_regional_multipliers_are_validated(value: str, message: str) -> None:
    text = (
        '{"header": {"version": "2026-11-23"}, "providers": {"aws.bedrock": {"regional_multipliers": '
        + value
        + "}}}"
    )
    with pytest.raises(PricingError, match=message):
        bundled(parse_json(text, "test.json"), BundledData())


def test_bedrock_prices_match_genai_prices(book: PriceBook) -> None:
    """Every global./regional. Bedrock entry of genai-prices, under the ids genai-prices itself matches."""
    pytest.importorskip("genai_prices")
    import datetime

    from genai_prices import Usage as GenaiUsage
    from genai_prices import calc_price
    from genai_prices import data as gp_data

    when = datetime.datetime.fromtimestamp(WHEN, datetime.timezone.utc)
    aws = next(p for p in gp_data.providers if p.id == "aws")
    compared = 0
    for model in aws.models:
        model_id = model.id.lower()
        if not model_id.startswith(("global.", "regional.")):
            continue
        bare = model_id.split(".", 1)[1]
        refs = [model_id] if model_id.startswith("global.") else [model_id, bare, f"us.{bare}"]
        for ref in refs:
            try:
                expected = calc_price(
                    GenaiUsage(input_tokens=100_000, output_tokens=100_000),
                    model_ref=ref,
                    provider_id="aws",
                    genai_request_timestamp=when,
                )
            except LookupError:
                continue
            assert expected.model.id.lower() == model_id, ref
            assert total(book, ref) == pytest.approx(float(expected.total_price), abs=1e-9), ref
            compared += 1
    assert compared >= 67  # 29 global and 38 regional entries in genai-prices 0.2.3
