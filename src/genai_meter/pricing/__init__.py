"""Pricing: turn a call's `Usage` into a USD `Cost`, from versioned price data kept apart from logic.

Price *data* lives in `genai_meter/pricing/data/*.json` (imported from pydantic's genai-prices by
`tools/import_genai_prices.py`, plus small hand-maintained files) and in an optional user
overrides file; price *logic* is this package. An unknown model is never priced at $0:
`PriceBook.resolve` returns None and the call is counted as unpriced.

    book = PriceBook.load("prices.yaml")           # bundled data + overrides
    pricing = book.resolve("openai", "gpt-4o-2024-08-06")   # cached; None = unpriced
    cost = pricing.cost(usage, at=time.time())      # Cost(input_usd=..., total_usd=..., ...)

How a call is priced (all prices in USD per million tokens):

- uncached input (`usage.uncached_input_tokens`) at `input`;
- cache reads at `cache_read` (default: `input`);
- cache writes at `cache_write` (5-minute; default `input`), the `usage.cache_write_1h_tokens`
  part of them at `cache_write_1h` (default `cache_write`);
- output tokens, reasoning included, at `output` (default 0, for embedding models);
- the period in force at the call's time (the first period also covers earlier calls);
- a long-context tier replaces the prices for the *whole* call once `usage.input_tokens` exceeds
  its `above_input_tokens` (how Anthropic and Gemini bill);
- a service tier (`flex`, `batch`, `priority`, ...) replaces them when the call names it; an
  unknown or absent tier is priced at standard rates;
- a negotiated discount multiplies everything.

Model ids are normalised: case, provider prefixes (`openai/gpt-4o`, `models/gemini-...`), dated
snapshots without an entry of their own (`gpt-4o-2024-08-06` -> `gpt-4o`,
`claude-3-5-sonnet-20241022` -> `claude-3-5-sonnet`, `-latest`), Bedrock
(`us.anthropic.claude-3-5-sonnet-20241022-v2:0`) and Vertex (`claude-3-5-sonnet-v2@20241022`) forms.
Azure OpenAI uses OpenAI prices, Bedrock and Vertex use Anthropic's for Claude (Bedrock in-region
and geographic ids, `us.`/`eu.`/... or no prefix, at the regional factor above the `global.` price;
Bedrock's own models at their regional or `global.` entry); OpenRouter ids
(`openai/gpt-4o`) use OpenRouter's own entry, else the upstream provider's. Fine-tunes
(`ft:gpt-4o-mini-2024-07-18:org::id`) use the fine-tune prices of their base model, never the
base model's own prices; without such an entry they need an override.

Overrides file format (YAML, or JSON when the name ends in `.json`)::

    version: 1                          # optional
    models:                             # a mapping keyed by model id (or a list of entries with `model:`)
      my-model:
        provider: openai                # required: the provider the calls go to (OTel name)
        input: 0.5                      # required, USD per million tokens, >= 0
        cache_read: 0.25                # optional (default: input)
        cache_write: 0.6                # optional (default: input), 5-minute writes
        cache_write_1h: 1.0             # optional (default: cache_write)
        output: 1.5                     # optional (default: 0)
        aliases: [my-model-v2]          # optional, other ids of the same model
        tiers:                          # optional long-context tiers, increasing thresholds
          - {above_input_tokens: 200000, input: 1.0, output: 3.0}   # omitted prices: lower level's
        service_tiers:                  # optional: a multiplier, or prices overlaid on standard
          batch: {multiplier: 0.5}
          priority: {input: 0.9, output: 2.7}
      ft:gpt-4o-mini-2024-07-18:acme::abc123:
        provider: openai
        periods:                        # instead of flat prices: dated periods, increasing `from`
          - {input: 0.3, output: 1.2}               # the first may omit `from`
          - {from: 2025-06-01, input: 0.25, output: 1.0, cache_read: 0.125}
      llama3: {provider: ollama, input: 0, output: 0}   # self-hosted: priced at an explicit $0
    discounts:                          # keyed by the provider that bills the call
      openai: 0.8                       # every openai model at 80 %
      anthropic: {all: 0.9, models: {claude-sonnet-4-5: 0.7}}   # per model (canonical ids)
    deployments:                        # Azure deployment names -> model ids (any provider)
      my-gpt4o-deploy: gpt-4o

An override entry replaces the bundled entry of the same provider and id (all its aliases then
point to the override). Unknown keys are errors. Every error names the file, the line and the
field: `prices.yaml:12: models.my-model.input: expected a number >= 0, got 'abc'`.

The bundled files use the same model-entry schema under
`providers: {<provider>: {models: {<id>: <entry>}}}`, with a `header` (version date, source and
licence) and, in `providers.json`, the fallbacks between providers.
"""

from __future__ import annotations

from ._book import PriceBook
from ._cost import Cost, provider_cost
from ._ids import price_ids
from ._model import ModelPricing
from ._source import PricingError

__all__ = ["Cost", "ModelPricing", "PriceBook", "PricingError", "price_ids", "provider_cost"]
