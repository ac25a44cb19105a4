"""`genai-meter prices`: look at the price book, validate an overrides file, price a call by hand.

Every user mistake (bad file, unknown model, bad date) ends in one line on stderr and a non-zero
exit status, never a traceback: these commands are what people run when a cost looks wrong.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date, datetime, timezone
from typing import Any

from genai_meter._usage import Usage
from genai_meter.pricing import ModelPricing, PriceBook, PricingError

_PREFERRED = ("openai", "anthropic", "gcp.gemini", "mistral_ai", "deepseek", "x_ai", "groq", "together")
_COLUMNS = ("input", "cached", "cache-write", "cache-write-1h", "output", "audio-in", "audio-out")
_TEXT_PRICES = 5  # the columns of the list's table; audio prices are shown where a model has its own
_TEXT_OF_AUDIO = {"input_audio": "input", "output_audio": "output"}  # (the price an audio one falls back to)
_KEYS = ("input", "cache_read", "cache_write", "cache_write_1h", "output", "input_audio", "output_audio")


def register(subparsers: Any) -> None:
    """Add `prices` and its sub-commands to the top-level `genai-meter` parser."""
    prices = subparsers.add_parser("prices", help="inspect prices, check an overrides file, price a call")
    commands = prices.add_subparsers(dest="prices_command", metavar="COMMAND", required=True)

    listing = commands.add_parser("list", help="list priced models ($ per million tokens, current prices)")
    listing.add_argument("--provider", help="only this provider (e.g. openai, anthropic, gcp.gemini)")
    listing.add_argument("--search", help="only models whose id or name contains this text")
    _common(listing)
    listing.set_defaults(func=cmd_list)

    show = commands.add_parser("show", help="dated price history, long-context and service tiers of a model")
    show.add_argument("model")
    show.add_argument(
        "--provider", help="provider the calls go to (default: every provider listing the model)"
    )
    _common(show)
    show.set_defaults(func=cmd_show)

    check = commands.add_parser("check", help="validate a price overrides file (YAML or JSON)")
    check.add_argument("file")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.set_defaults(func=cmd_check)

    cost = commands.add_parser("cost", help="price one call from its token counts")
    cost.add_argument("model")
    cost.add_argument("--input", type=_count, required=True, help="input tokens, cached ones included")
    cost.add_argument("--output", type=_count, required=True, help="output tokens, reasoning included")
    cost.add_argument("--cache-read", type=_count, default=0, help="input tokens read from the cache")
    cost.add_argument("--cache-write", type=_count, default=0, help="input tokens written to the cache")
    cost.add_argument("--cache-write-1h", type=_count, default=0, help="part of --cache-write kept 1 hour")
    cost.add_argument("--provider", help="provider the call went to (default: the first listing the model)")
    cost.add_argument("--service-tier", help="flex, batch, priority, ... (default: standard)")
    cost.add_argument("--at", type=_day, help="date of the call, YYYY-MM-DD (default: now)")
    _common(cost)
    cost.set_defaults(func=cmd_cost)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overrides", metavar="FILE", help="price overrides file (YAML or JSON)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of tokens, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of tokens >= 0, got {value}")
    return value


def _day(text: str) -> float:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()


def _fail(message: str) -> int:
    print(f"genai-meter prices: error: {message}", file=sys.stderr)
    return 1


def _book(args: argparse.Namespace) -> PriceBook:
    return PriceBook.load(getattr(args, "overrides", None))


def _money(value: float) -> str:
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text or "0"


def _rates(values: tuple[float, ...]) -> dict[str, float]:
    return dict(zip(_KEYS, values, strict=True))


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i]) for i, cell in enumerate(row))
        for row in [header, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)


def _matches(book: PriceBook, model: str, provider: str | None) -> list[ModelPricing]:
    if provider:
        found = book.resolve(provider, model)
        return [found] if found is not None else []
    out: list[ModelPricing] = []
    order = {name: i for i, name in enumerate(_PREFERRED)}
    for name in sorted(book.providers(), key=lambda p: (order.get(p, len(order)), p)):
        found = book.resolve(name, model)
        if found is not None and found.price_provider == name and all(found.spec is not o.spec for o in out):
            out.append(found)
    return out


# --- handlers -----------------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    try:
        book = _book(args)
    except PricingError as exc:
        return _fail(str(exc))
    now = time.time()
    provider = book.provider(args.provider) if args.provider else None
    search = (args.search or "").lower()
    rows: list[dict[str, Any]] = []
    for pricing in book.models():
        if provider and pricing.provider != provider:
            continue
        if search and search not in pricing.model and search not in (pricing.name or "").lower():
            continue
        rows.append({"provider": pricing.provider, "model": pricing.model, **_rates(pricing.rates(now))})
    if args.json:
        print(json.dumps({"pricing_version": book.version, "models": rows}, indent=1))
        return 0
    if not rows:
        return _fail("no model matches")
    header = ["provider", "model", *(f"{c} $/M" for c in _COLUMNS[:_TEXT_PRICES])]
    body = [[r["provider"], r["model"], *(_money(r[k]) for k in _KEYS[:_TEXT_PRICES])] for r in rows]
    print(_table(body, header))
    print(f"\n{len(rows)} models, prices {book.version}")
    return 0


def _describe(pricing: ModelPricing) -> dict[str, Any]:
    periods: list[dict[str, Any]] = []
    for i, period in enumerate(pricing.periods):
        at = float("-inf") if i == 0 else _day(period.start.isoformat()) if period.start else float("-inf")
        thresholds = sorted(
            {t.above_input_tokens for t in period.tiers}
            | {t.above_input_tokens for s in period.service_tiers.values() for t in s.tiers}
        )
        entry: dict[str, Any] = {"from": period.start.isoformat() if period.start else None}
        entry.update(_rates(pricing.rates(at)))
        if thresholds:
            entry["tiers"] = [
                {"above_input_tokens": n, **_rates(pricing.rates(at, None, n + 1))} for n in thresholds
            ]
        if period.service_tiers:
            entry["service_tiers"] = {}
            for name in period.service_tiers:
                tier: dict[str, Any] = _rates(pricing.rates(at, name))
                if thresholds:
                    tier["tiers"] = [
                        {"above_input_tokens": n, **_rates(pricing.rates(at, name, n + 1))}
                        for n in thresholds
                    ]
                entry["service_tiers"][name] = tier
        periods.append(entry)
    return {
        "provider": pricing.provider,
        "price_provider": pricing.price_provider,
        "model": pricing.model,
        "name": pricing.name,
        "aliases": list(pricing.spec.aliases),
        "discount": pricing.discount,
        "pricing_version": pricing.version,
        "source": pricing.spec.origin,
        "periods": periods,
    }


def _price_line(prices: dict[str, Any]) -> str:
    """The prices of one period or tier; the audio ones where they are not the text ones."""
    return "  ".join(
        f"{column} {_money(prices[key])}"
        for column, key in zip(_COLUMNS, _KEYS, strict=True)
        if key not in _TEXT_OF_AUDIO or prices[key] != prices[_TEXT_OF_AUDIO[key]]
    )


def cmd_show(args: argparse.Namespace) -> int:
    try:
        book = _book(args)
    except PricingError as exc:
        return _fail(str(exc))
    found = _matches(book, args.model, args.provider)
    if not found:
        where = f" for provider {args.provider!r}" if args.provider else ""
        return _fail(f"no price for model {args.model!r}{where} (unpriced); see `genai-meter prices list`")
    described = [_describe(p) for p in found]
    if args.json:
        print(json.dumps(described if len(described) > 1 else described[0], indent=1))
        return 0
    for n, info in enumerate(described):
        if n:
            print()
        via = f" (prices of {info['price_provider']})" if info["price_provider"] != info["provider"] else ""
        print(f"{info['provider']} / {info['model']}{via}" + (f" - {info['name']}" if info["name"] else ""))
        if info["aliases"]:
            print(f"  aliases: {', '.join(info['aliases'])}")
        if info["discount"] != 1.0:
            print(f"  discount: x{info['discount']:g} (included below)")
        print(f"  $ per million tokens, {info['pricing_version']}")
        for period in info["periods"]:
            since = f"from {period['from']}" if period["from"] else "from the start"
            print(f"  {since}: {_price_line(period)}")
            for tier in period.get("tiers", []):
                print(f"    input > {tier['above_input_tokens']} tokens: {_price_line(tier)}")
            for name, tier in period.get("service_tiers", {}).items():
                print(f"    service tier {name}: {_price_line(tier)}")
                for level in tier.get("tiers", []):
                    print(f"      input > {level['above_input_tokens']} tokens: {_price_line(level)}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    try:
        book = PriceBook.load(args.file)
    except PricingError as exc:
        if args.json:
            print(json.dumps({"ok": False, "error": str(exc)}))
        return _fail(str(exc))
    if args.json:
        print(json.dumps({"ok": True, "file": args.file, "pricing_version": book.version}))
    else:
        print(f"ok: {args.file} is valid (prices {book.version})")
    return 0


def cmd_cost(args: argparse.Namespace) -> int:
    try:
        book = _book(args)
    except PricingError as exc:
        return _fail(str(exc))
    if args.cache_read + args.cache_write > args.input:
        return _fail("--cache-read plus --cache-write cannot exceed --input (input includes cached tokens)")
    if args.cache_write_1h > args.cache_write:
        return _fail("--cache-write-1h is part of --cache-write and cannot exceed it")
    found = _matches(book, args.model, args.provider)
    if not found:
        where = f" for provider {args.provider!r}" if args.provider else ""
        return _fail(f"no price for model {args.model!r}{where} (unpriced); add it to an overrides file")
    pricing = found[0]
    at = args.at if args.at is not None else time.time()
    usage = Usage(
        input_tokens=args.input,
        output_tokens=args.output,
        cache_read_tokens=args.cache_read,
        cache_write_tokens=args.cache_write,
        cache_write_1h_tokens=args.cache_write_1h,
    )
    cost = pricing.cost(usage, at, args.service_tier)
    day = datetime.fromtimestamp(at, timezone.utc).date().isoformat()
    result = {
        "provider": pricing.provider,
        "model": cost.model,
        "price_provider": pricing.price_provider,
        "at": day,
        "service_tier": args.service_tier,
        "input_usd": cost.input_usd,
        "cache_read_usd": cost.cache_read_usd,
        "cache_write_usd": cost.cache_write_usd,
        "output_usd": cost.output_usd,
        "total_usd": cost.total_usd,
        "source": cost.source,
        "pricing_version": cost.pricing_version,
    }
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    via = f" (prices of {pricing.price_provider})" if pricing.price_provider != pricing.provider else ""
    print(f"{pricing.provider} / {cost.model}{via}, {day}, prices {cost.pricing_version}")
    if args.service_tier:
        print(f"service tier: {args.service_tier}")
    uncached = usage.uncached_input_tokens
    write_5m = args.cache_write - args.cache_write_1h
    lines = [
        ("input (uncached)", f"{uncached} tokens", cost.input_usd),
        ("cache read", f"{args.cache_read} tokens", cost.cache_read_usd),
        ("cache write", f"{write_5m} (5m) + {args.cache_write_1h} (1h) tokens", cost.cache_write_usd),
        ("output", f"{args.output} tokens", cost.output_usd),
    ]
    width = max(len(t) for _, t, _ in lines)
    for label, tokens, usd in lines:
        print(f"  {label:<16} {tokens:>{width}}  ${usd:.6f}")
    print(f"  {'total':<16} {'':>{width}}  ${cost.total_usd:.6f}")
    return 0
