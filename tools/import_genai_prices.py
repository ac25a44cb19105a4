"""Convert pydantic's genai-prices data into genai-meter's bundled price file.

    python tools/import_genai_prices.py [--version YYYY-MM-DD] [--out PATH]

genai-prices (MIT, https://github.com/pydantic/genai-prices) keeps prices as Python objects with
per-key tiers, conditional (dated or time-of-day) prices and request-context variants. Our format
is simpler: dated periods, each with flat prices, whole-call long-context tiers and named service
tiers. This script walks every model of the providers we bundle, evaluates its prices at each date
where anything changes, and writes `src/genai_meter/pricing/data/genai_prices.json`.

Choices made here (also in the file's header note):
- time-of-day prices (DeepSeek off-peak) are dropped; the standard (peak) price is kept, so
  budgets err on the safe side;
- only token prices are kept (input, cached input, cache writes 5m/1h, output, audio input and
  output); per-request, image, video, search and cached-audio prices are not modelled by
  genai-meter (cached audio is priced as cached text);
- Anthropic models served through Vertex AI and Bedrock are not copied: those providers fall back
  to the Anthropic price list (see providers.json), which has the long-context tiers and service
  tiers that genai-prices' Bedrock entries lack; Azure entries that OpenAI also lists are skipped
  for the same reason;
- Bedrock bills a model called through a geographic or in-region endpoint (`us.`, `eu.`, `jp.`,
  ... or no prefix) differently from the `global.` cross-region profile (about 10 % more), and
  genai-prices lists the two as `regional.<id>` and `global.<id>`. When a model has both, the
  regional prices are written under the bare id (which every non-global id resolves to) and the
  global ones under `global.<id>`; a model with one entry only is written under the bare id and
  serves every prefix. For Claude, whose prices come from the Anthropic list, the ratio of each
  `regional.` entry to the Anthropic price is written to `regional_multipliers` (the importer
  fails if a ratio is not the same for every price of a model, or if a `global.` Claude price is
  not the Anthropic one);
- OpenRouter: only models of popular vendors, without `:batch` and `~` aliases;
- OpenAI's embeddings models get a `batch` tier at half the input price where genai-prices has
  none: OpenAI's Batch API bills them at half price, as every model it serves (the "Batch" column of
  https://platform.openai.com/docs/pricing: text-embedding-3-small $0.01, -3-large $0.065,
  ada-002 $0.05 per million tokens).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from collections.abc import Collection
from decimal import Decimal
from pathlib import Path
from typing import Any

from genai_prices import data as gp_data
from genai_prices import types as gp

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "src" / "genai_meter" / "pricing" / "data" / "genai_prices.json"

# genai-prices provider id -> OTel semconv provider name
PROVIDERS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "gcp.gemini",
    "aws": "aws.bedrock",
    "azure": "azure.ai.openai",
    "groq": "groq",
    "deepseek": "deepseek",
    "mistral": "mistral_ai",
    "together": "together",
    "x-ai": "x_ai",
    "openrouter": "openrouter",
}
OPENROUTER_VENDORS = {"openai", "anthropic", "google", "meta-llama", "mistralai", "deepseek", "x-ai", "qwen"}
PRICE_KEYS = {
    "input_mtok": "input",
    "cache_read_mtok": "cache_read",
    "cache_write_mtok": "cache_write",
    "cache_write_1h_mtok": "cache_write_1h",
    "output_mtok": "output",
    "input_audio_mtok": "input_audio",
    "output_audio_mtok": "output_audio",
}
# request context (genai-prices price_variants `when`) -> our service tier name
SERVICE_TIERS = {
    (("processing", "batch"),): "batch",
    (("service_tier", "flex"),): "flex",
    (("service_tier", "priority"),): "priority",
    (("service_tier", "fast"),): "fast",
    (("speed", "fast"),): "fast",
}
LICENSE = (
    "Prices derived from pydantic/genai-prices (https://github.com/pydantic/genai-prices), "
    "MIT License, Copyright (c) Pydantic Services Inc. 2025 to present. Permission is hereby granted, "
    "free of charge, to any person obtaining a copy of this software and associated documentation files "
    "(the 'Software'), to deal in the Software without restriction, including without limitation the "
    "rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the "
    "Software, and to permit persons to whom the Software is furnished to do so, subject to the "
    "following conditions: The above copyright notice and this permission notice shall be included in "
    "all copies or substantial portions of the Software. THE SOFTWARE IS PROVIDED 'AS IS', WITHOUT "
    "WARRANTY OF ANY KIND, EXPRESS OR IMPLIED."
)


def number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def aliases_of(clause: Any) -> list[str]:
    """Literal ids from a match clause (prefix clauses count when they name a whole id)."""
    if isinstance(clause, gp.ClauseOr):
        return [a for c in clause.or_ for a in aliases_of(c)]
    if isinstance(clause, gp.ClauseAnd):
        return [a for c in clause.and_ for a in aliases_of(c)][:1]
    for attr in ("equals", "starts_with", "contains", "ends_with"):
        value = getattr(clause, attr, None)
        if isinstance(value, str):
            value = value.lower()
            whole_id = bool(value) and value[-1] not in "-@.:/"
            if whole_id and (attr != "contains" or "-" in value):
                return [value]
    return []


def price_set(prices: gp.ModelPrice) -> dict[str, Any] | None:
    """Our flat prices + tiers for one genai-prices ModelPrice (None if it has no token prices)."""
    flat: dict[str, Any] = {}
    tiered: dict[str, gp.TieredPrices] = {}
    for key, ours in PRICE_KEYS.items():
        value = getattr(prices, key, None)
        if value is None:
            continue
        if isinstance(value, gp.TieredPrices):
            flat[ours] = number(value.base)
            tiered[ours] = value
        else:
            flat[ours] = number(value)
    if not flat:
        return None
    starts = sorted({tier.start for tp in tiered.values() for tier in tp.tiers})
    if starts:
        tiers = []
        for start in starts:
            tier: dict[str, Any] = {"above_input_tokens": start}
            for ours, tp in tiered.items():
                for t in tp.tiers:
                    if t.start == start:
                        tier[ours] = number(t.price)
            tiers.append(tier)
        flat["tiers"] = tiers
    return flat


def active(constraint: Any, day: dt.date) -> bool:
    if constraint is None or isinstance(constraint, gp.TimeOfDateConstraint):
        return True  # time-of-day prices: the constrained (standard, peak) price is kept
    assert isinstance(constraint, gp.StartDateConstraint)
    return constraint.start_date <= day


def standard_at(model: gp.ModelInfo, day: dt.date) -> gp.ModelPrice:
    if isinstance(model.prices, gp.ModelPrice):
        return model.prices
    for conditional in reversed(model.prices):
        if active(conditional.constraint, day):
            return conditional.prices
    return model.prices[0].prices


def service_tiers_at(model: gp.ModelInfo, day: dt.date) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for variant in model.price_variants or ():
        if isinstance(variant.constraint, gp.TimeOfDateConstraint):
            continue
        if variant.constraint is not None and not active(variant.constraint, day):
            continue
        name = SERVICE_TIERS.get(tuple(sorted(variant.when.items())))
        if name is None or name in out:
            continue
        overlay = price_set(variant.prices)
        if overlay:
            out[name] = overlay
    return out


def start_dates(model: gp.ModelInfo) -> list[dt.date]:
    dates: set[dt.date] = set()
    constraints = [c.constraint for c in model.prices] if isinstance(model.prices, list) else []
    constraints += [v.constraint for v in model.price_variants or ()]
    for constraint in constraints:
        if isinstance(constraint, gp.StartDateConstraint):
            dates.add(constraint.start_date)
    return sorted(dates)


def periods_of(model: gp.ModelInfo) -> list[dict[str, Any]]:
    raw: list[tuple[dt.date, dict[str, Any], dict[str, Any]]] = []
    for day in [dt.date.min, *start_dates(model)]:
        base = price_set(standard_at(model, day))
        if base is None or "input" not in base:
            continue
        raw.append((day, base, service_tiers_at(model, day)))
    # genai-prices dates a service tier from when it began to model it ("batch history before then
    # is not modelled"); batch/flex/priority discounts are older than that, so a tier is carried
    # back over earlier periods whose standard prices are the same.
    for i in range(len(raw) - 2, -1, -1):
        _, base, service = raw[i]
        _, next_base, next_service = raw[i + 1]
        if base == next_base:
            for name, overlay in next_service.items():
                service.setdefault(name, overlay)
    periods: list[dict[str, Any]] = []
    previous: tuple[dict[str, Any], dict[str, Any]] | None = None
    for day, base, service in raw:
        if previous == (base, service):
            continue
        previous = (base, service)
        period = dict(base)
        if service:
            period["service_tiers"] = service
        if day != dt.date.min:
            period = {"from": day.isoformat(), **period}
        periods.append(period)
    return periods


def with_half_price_batch(period: dict[str, Any]) -> dict[str, Any]:
    """`period` with a `batch` tier at half its input price, where it has no batch tier (see the
    module's doc: OpenAI's embeddings models)."""
    tiers = period.get("service_tiers") or {}
    if "batch" in tiers:
        return period
    return {**period, "service_tiers": {**tiers, "batch": {"input": number(Decimal(str(period["input"])) / 2)}}}


BEDROCK_SCOPES = ("global.", "regional.")
BEDROCK_VERSION = re.compile(r"-v\d+(?::\d+)?$")


def bedrock_bare_id(model_id: str) -> str:
    """`global.amazon.nova-2-lite-v1:0` and `regional.amazon.nova-2-lite-v1:0` -> `amazon.nova-2-lite-v1:0`."""
    for prefix in BEDROCK_SCOPES:
        model_id = model_id.removeprefix(prefix)
    return model_id


def bedrock_pairs(models: list[gp.ModelInfo]) -> set[str]:
    """Bare ids of the Bedrock models that genai-prices prices both globally and regionally."""
    scopes: dict[str, set[str]] = {}
    for model in models:
        model_id = model.id.lower()
        for prefix in BEDROCK_SCOPES:
            if model_id.startswith(prefix):
                scopes.setdefault(model_id.removeprefix(prefix), set()).add(prefix)
    return {bare for bare, found in scopes.items() if len(found) == len(BEDROCK_SCOPES)}


def canonical_id(
    provider: str, model: gp.ModelInfo, taken: set[str], paired: Collection[str] = frozenset()
) -> str:
    model_id = model.id.lower()
    if provider == "aws.bedrock":
        bare = bedrock_bare_id(model_id)
        if model_id.startswith("global.") and bare in paired:
            return model_id  # the regional entry has the bare id: global prices keep the prefix
        model_id = bare
    if model_id.startswith("ft:"):
        model_id = model_id.rstrip("-")
    if model_id.endswith("-latest") and model_id[: -len("-latest")] not in taken:
        model_id = model_id[: -len("-latest")]
    return model_id


def wanted(provider_id: str, model: gp.ModelInfo, openai_models: list[gp.ModelInfo]) -> bool:
    model_id = model.id.lower()
    if provider_id == "google":
        return not model_id.startswith("claude")
    if provider_id == "aws":
        return ".anthropic." not in f".{model_id}"
    if provider_id == "azure":
        return not any(m.id.lower() == model_id or m.is_match(model_id) for m in openai_models)
    if provider_id == "openrouter":
        vendor = model_id.split("/", 1)[0]
        return vendor in OPENROUTER_VENDORS and not model_id.endswith(":batch")
    if provider_id == "openai":
        return not model_id.endswith(".ft-")  # Azure fine-tune ids: priced via ft:<base>
    return True


def _flat_prices(prices: gp.ModelPrice) -> dict[tuple[int, str], Decimal]:
    """Token prices by (tier start, key); 0 is the base level."""
    out: dict[tuple[int, str], Decimal] = {}
    for key in PRICE_KEYS:
        value = getattr(prices, key, None)
        if isinstance(value, gp.TieredPrices):
            out[(0, key)] = value.base
            for tier in value.tiers:
                out[(tier.start, key)] = tier.price
        elif value is not None:
            out[(0, key)] = value
    return out


def _ratio(bedrock: gp.ModelInfo, first_party: gp.ModelInfo) -> Decimal:
    """The one factor between a (flat-priced) Bedrock Claude entry and the current Anthropic price."""
    if not isinstance(bedrock.prices, gp.ModelPrice):
        raise SystemExit(f"{bedrock.id}: dated Bedrock prices are not supported for Claude; update the importer")
    ours = _flat_prices(bedrock.prices)
    theirs = _flat_prices(standard_at(first_party, dt.date.max))
    ratios = {key: value / theirs[key] for key, value in ours.items() if theirs.get(key)}
    if not ratios or len(set(ratios.values())) != 1:
        raise SystemExit(
            f"{bedrock.id}: its prices are not one multiple of {first_party.id}'s ({ratios}); "
            "Claude on Bedrock cannot be priced as a multiple of the Anthropic list: update the importer"
        )
    return next(iter(ratios.values()))


def claude_regional_multipliers(
    bedrock_models: list[gp.ModelInfo], anthropic: gp.Provider, anthropic_out: dict[str, Any]
) -> dict[str, int | float]:
    """Anthropic canonical id -> factor of its prices for Claude called through a non-global Bedrock id.

    Claude on Bedrock is priced from the Anthropic list (its tiers and service tiers included).
    genai-prices' `regional.anthropic.*` entries are that list times a factor (1.1 for recent
    models, 1 for older ones); `global.anthropic.*` entries must be the list itself."""
    out: dict[str, Decimal] = {}
    anthropic_ids = {m.id.lower() for m in anthropic.models}
    for model in sorted(bedrock_models, key=lambda m: m.id.lower()):
        model_id = model.id.lower()
        if ".anthropic." not in f".{model_id}":
            continue
        bare = BEDROCK_VERSION.sub("", bedrock_bare_id(model_id).removeprefix("anthropic."))
        first_party = anthropic.find_model(bare)
        if first_party is None:
            raise SystemExit(f"{model.id}: no Anthropic model matches {bare!r}; update the importer")
        canonical = canonical_id("anthropic", first_party, anthropic_ids)
        if canonical not in anthropic_out["models"]:
            raise SystemExit(f"{model.id}: Anthropic model {canonical!r} is not imported")
        ratio = _ratio(model, first_party)
        if model_id.startswith("global."):
            if ratio != 1:
                raise SystemExit(f"{model.id}: global price is {ratio} x the Anthropic list; update the importer")
            continue
        if out.setdefault(canonical, ratio) != ratio:
            raise SystemExit(f"{model.id}: factor {ratio} differs from {out[canonical]} for {canonical}")
    return {model: number(ratio) for model, ratio in sorted(out.items()) if ratio != 1}


def convert(version: str) -> dict[str, Any]:
    by_id = {p.id: p for p in gp_data.providers}
    openai_models = by_id["openai"].models
    providers: dict[str, Any] = {}
    for gp_id, ours in PROVIDERS.items():
        provider = by_id[gp_id]
        models: dict[str, Any] = {}
        all_ids = {m.id.lower() for m in provider.models}
        paired = bedrock_pairs(provider.models) if ours == "aws.bedrock" else set()
        for model in sorted(provider.models, key=lambda m: m.id.lower()):
            if not wanted(gp_id, model, openai_models):
                continue
            periods = periods_of(model)
            if not periods:
                continue
            if ours == "openai" and model.id.lower().startswith("text-embedding-"):
                periods = [with_half_price_batch(period) for period in periods]
            model_id = canonical_id(ours, model, all_ids, paired)
            if model_id in models:
                continue
            entry: dict[str, Any] = {}
            if model.name:
                entry["name"] = model.name
            aliases = [
                a for a in dict.fromkeys([model.id.lower(), *aliases_of(model.match)]) if a != model_id
            ]
            if model_id.startswith("global."):
                # only global ids may reach the global prices (the regional entry has the bare id)
                aliases = [a for a in aliases if a.startswith("global.")]
            if aliases:
                entry["aliases"] = aliases
            if len(periods) == 1:
                entry.update(periods[0])
            else:
                entry["periods"] = periods
            models[model_id] = entry
        providers[ours] = {"models": models}
        if ours == "aws.bedrock":
            multipliers = claude_regional_multipliers(provider.models, by_id["anthropic"], providers["anthropic"])
            if multipliers:
                providers[ours]["regional_multipliers"] = {"anthropic": multipliers}
    return {
        "header": {
            "name": "genai-meter bundled prices (imported from genai-prices)",
            "version": version,
            "source": "https://github.com/pydantic/genai-prices",
            "source_version": _genai_prices_version(),
            "generated_by": "tools/import_genai_prices.py (do not edit by hand; re-run the script)",
            "units": "USD per million tokens",
            "license": LICENSE,
            "note": (
                "Token prices only. Time-of-day discounts (DeepSeek off-peak) are not modelled: the "
                "standard price is used. Anthropic models on Bedrock and Vertex AI, and OpenAI models on "
                "Azure, use the first-party price lists (see providers.json). Bedrock: a model priced both "
                "globally and in-region has its in-region prices under the bare id and its global ones "
                "under global.<id>; regional_multipliers scale the Anthropic prices for Claude called "
                "through a non-global Bedrock id."
            ),
        },
        "providers": providers,
    }


def _genai_prices_version() -> str:
    from importlib.metadata import version

    return version("genai-prices")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--version", default=dt.date.today().isoformat(), help="data version date (YYYY-MM-DD)"
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    document = convert(args.version)
    args.out.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    count = sum(len(p["models"]) for p in document["providers"].values())
    print(f"wrote {args.out} ({count} models)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
