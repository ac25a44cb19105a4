"""Hot-path cost of pricing one call: `PriceBook.resolve` (cached) + `ModelPricing.cost`.

    PYTHONPATH=src python benchmarks/bench_pricing.py

Prints nanoseconds per call, best of 5 runs of 200k calls, for a few representative models
(flat prices, long-context tiers, dated periods, a provider fallback). The target is a few
microseconds per call so that pricing is invisible next to an LLM round trip.
"""

from __future__ import annotations

import time

from genai_meter._usage import Usage
from genai_meter.pricing import PriceBook

CALLS = 200_000
RUNS = 5

CASES = [
    ("openai", "gpt-4o-mini", Usage(input_tokens=1200, output_tokens=300, cache_read_tokens=1024)),
    (
        "anthropic",
        "claude-sonnet-4-5-20250929",
        Usage(
            input_tokens=250_000,
            output_tokens=900,
            cache_read_tokens=100_000,
            cache_write_tokens=20_000,
            cache_write_1h_tokens=5_000,
        ),
    ),
    ("openai", "o3", Usage(input_tokens=5000, output_tokens=4000, reasoning_tokens=3000)),
    (
        "aws.bedrock",
        "us.anthropic.claude-3-5-sonnet-20241022-v2:0",
        Usage(input_tokens=800, output_tokens=200),
    ),
]


def bench(book: PriceBook, provider: str, model: str, usage: Usage) -> float:
    at = time.time()
    resolve = book.resolve
    best = float("inf")
    for _ in range(RUNS):
        start = time.perf_counter()
        for _ in range(CALLS):
            pricing = resolve(provider, model)
            assert pricing is not None
            pricing.cost(usage, at)
        best = min(best, time.perf_counter() - start)
    return best / CALLS * 1e9


def main() -> None:
    book = PriceBook.load()
    print(f"pricing version {book.version}; {CALLS} calls per run, best of {RUNS}")
    for provider, model, usage in CASES:
        ns = bench(book, provider, model, usage)
        print(f"{provider:>12} {model:<45} {ns:8.0f} ns per resolve+cost")


if __name__ == "__main__":
    main()
