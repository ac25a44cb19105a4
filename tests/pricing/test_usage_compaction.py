"""Anthropic context compaction: the `compaction` entries of `usage.iterations` are billed but left
out of the top-level usage, so the normaliser adds them in."""

from __future__ import annotations

from typing import Any

import pytest
from anthropic.types.beta import BetaUsage

from genai_meter._usage import anthropic_usage
from genai_meter.pricing import PriceBook

from .conftest import at

# claude-sonnet-4-5 (USD per million tokens): input 3, cache read 0.3, write 3.75 (5 m) / 6 (1 h), output 15.
USAGE: dict[str, Any] = {
    "input_tokens": 2000,
    "output_tokens": 500,
    "cache_read_input_tokens": 10000,
    "cache_creation_input_tokens": 1000,
    "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 0},
    "iterations": [
        {
            "type": "compaction",
            "input_tokens": 150000,
            "output_tokens": 4000,
            "cache_read_input_tokens": 20000,
            "cache_creation_input_tokens": 3000,
            "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000},
        },
        {  # already in the top-level counts
            "type": "message",
            "input_tokens": 2000,
            "output_tokens": 500,
            "cache_read_input_tokens": 10000,
            "cache_creation_input_tokens": 1000,
        },
    ],
}
COST = (
    (2000 + 150000) * 3 + (10000 + 20000) * 0.3 + (1000 + 1000) * 3.75 + 2000 * 6 + (500 + 4000) * 15
) / 1e6


@pytest.mark.parametrize("form", ["sdk", "dict"])
def test_compaction_iterations_are_added(book: PriceBook, form: str) -> None:
    usage = anthropic_usage(BetaUsage.model_validate(USAGE) if form == "sdk" else USAGE)
    assert usage is not None and not usage.suspect
    assert (usage.input_tokens, usage.output_tokens) == (2000 + 10000 + 1000 + 150000 + 20000 + 3000, 4500)
    assert (usage.cache_read_tokens, usage.cache_write_tokens, usage.cache_write_1h_tokens) == (30000, 4000, 2000)
    pricing = book.resolve("anthropic", "claude-sonnet-4-5")
    assert pricing is not None
    assert pricing.cost(usage, at("2026-11-20")).total_usd == pytest.approx(COST, abs=1e-9)


def test_compaction_without_cache_fields_and_odd_iterations() -> None:
    usage = anthropic_usage({
        "input_tokens": 10, "output_tokens": 1,
        "iterations": [{"type": "compaction", "input_tokens": 100, "output_tokens": 7,
                        "cache_creation": {"ephemeral_5m_input_tokens": 5}}, "junk", None],
    })
    assert usage is not None and not usage.suspect
    assert (usage.input_tokens, usage.output_tokens, usage.cache_write_tokens) == (115, 8, 5)
    bad = anthropic_usage({"input_tokens": 10, "output_tokens": 1, "iterations": {"type": "compaction"}})
    assert bad is not None and bad.suspect and (bad.input_tokens, bad.output_tokens) == (10, 1)
    missing = anthropic_usage({"input_tokens": 10, "iterations": [{"type": "compaction", "output_tokens": 3}]})
    assert missing is not None and missing.suspect and (missing.input_tokens, missing.output_tokens) == (10, 3)


def test_usage_without_iterations_is_unchanged() -> None:
    usage = anthropic_usage(BetaUsage.model_validate({**USAGE, "iterations": None}))
    assert usage is not None and (usage.input_tokens, usage.output_tokens) == (13000, 500)
    assert anthropic_usage({**USAGE, "iterations": []}) == usage


def test_each_request_is_judged_on_its_own_against_the_long_context_tier(book: PriceBook) -> None:
    """A compaction is a request of its own: 60,000 input tokens plus a 160,000-token compaction are
    two requests under sonnet 4.5's 200,000-token tier, both at standard rates (the sum, 220,000,
    once priced the whole call at the long-context rates: $1.4325 instead of $0.735)."""
    usage = anthropic_usage({
        "input_tokens": 60000, "output_tokens": 1000,
        "iterations": [{"type": "compaction", "input_tokens": 160000, "output_tokens": 4000,
                        "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}],
    })
    assert usage is not None and (usage.input_tokens, usage.output_tokens) == (220000, 5000)
    pricing = book.resolve("anthropic", "claude-sonnet-4-5")
    assert pricing is not None
    cost = pricing.cost(usage, at("2026-11-20"))
    assert cost.total_usd == pytest.approx((60000 * 3 + 1000 * 15 + 160000 * 3 + 4000 * 15) / 1e6, abs=1e-12)
    assert (cost.input_usd, cost.output_usd) == (pytest.approx(0.66, abs=1e-12), pytest.approx(0.075, abs=1e-12))
    # each request over the tier on its own is priced at the long-context rates (input 6, output 22.5)
    big = anthropic_usage({
        "input_tokens": 210000, "output_tokens": 1000,
        "iterations": [{"type": "compaction", "input_tokens": 1000, "output_tokens": 100}],
    })
    assert big is not None
    assert pricing.cost(big, at("2026-11-20")).total_usd == pytest.approx(
        (210000 * 6 + 1000 * 22.5 + 1000 * 3 + 100 * 15) / 1e6, abs=1e-12)
