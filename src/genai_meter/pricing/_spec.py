"""Validation of price documents into plain, immutable specs (no pricing logic here).

Bundled data and user overrides share one model-entry schema, so one validator serves both and a
user who reads the bundled JSON knows how to write an override. Every check reports the file,
line and field path through `Located.error`; unknown keys are errors because a misspelt
`cache_reed` silently ignored would bill cache reads at the input price.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from ._source import Located, PathKey

# Audio tokens (input_audio, output_audio) are priced apart where a model has audio prices; without
# them, at the text prices.
PRICE_KEYS = ("input", "cache_read", "cache_write", "cache_write_1h", "output", "input_audio", "output_audio")
_PERIOD_KEYS = frozenset({"from", *PRICE_KEYS, "tiers", "service_tiers", "note"})
_ENTRY_KEYS = frozenset({"name", "aliases", "note", "periods"})
_TIER_KEYS = frozenset({"above_input_tokens", *PRICE_KEYS})
_SERVICE_TIER_KEYS = frozenset({"multiplier", *PRICE_KEYS, "tiers", "note"})
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, eq=False)
class TierSpec:
    """Prices that replace the lower level's when a call's input tokens exceed the threshold."""

    above_input_tokens: int
    prices: dict[str, float]


@dataclass(frozen=True, eq=False)
class ServiceTierSpec:
    """A service tier: either a multiplier of the standard prices, or prices overlaid on them."""

    multiplier: float | None
    prices: dict[str, float]
    tiers: tuple[TierSpec, ...]


@dataclass(frozen=True, eq=False)
class PeriodSpec:
    """Prices in force from `start` (None: since always) until the next period starts."""

    start: date | None
    prices: dict[str, float]
    tiers: tuple[TierSpec, ...] = ()
    service_tiers: dict[str, ServiceTierSpec] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class ModelSpec:
    provider: str
    model: str
    name: str | None
    aliases: tuple[str, ...]
    periods: tuple[PeriodSpec, ...]
    origin: str


@dataclass(frozen=True)
class ProviderSpec:
    """How a provider borrows prices: other providers' models, or the upstream named by a prefix."""

    fallback: tuple[str, ...] = ()
    upstream_by_vendor_prefix: bool = False


@dataclass
class BundledData:
    version: str = ""
    headers: list[dict[str, Any]] = field(default_factory=list)
    models: list[ModelSpec] = field(default_factory=list)
    providers: dict[str, ProviderSpec] = field(default_factory=dict)
    provider_aliases: dict[str, str] = field(default_factory=dict)
    vendor_prefixes: dict[str, str] = field(default_factory=dict)
    # provider -> (price provider, model) -> factor of the borrowed prices for calls that are not
    # global (Bedrock bills Claude called in-region or through a geographic profile above the
    # `global.` price, which is Anthropic's own)
    regional_multipliers: dict[str, dict[tuple[str, str], float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Discount:
    all: float | None
    models: dict[str, float]


@dataclass
class Overrides:
    models: list[ModelSpec] = field(default_factory=list)
    discounts: dict[str, Discount] = field(default_factory=dict)
    deployments: dict[str, str] = field(default_factory=dict)


# --- small checks -------------------------------------------------------------------------------
_QUOTED = 40  # characters of a wrong value quoted in a message
_KINDS = {str: "text", list: "a list", int: "a number", float: "a number", bool: "true or false", type(None): "nothing"}


def _describe(value: Any) -> str:
    """A wrong value as a message names it: short ones as written, longer ones by kind and size. A
    file given as the pricing file by mistake (a `.env`) is read as one string or a mapping of its
    lines, and its content, secrets and all, must not end up in the error and the log."""
    if isinstance(value, str):
        return repr(value) if len(value) <= _QUOTED and "\n" not in value else f"text of {len(value)} characters"
    if isinstance(value, dict | list):
        return f"a {'mapping' if isinstance(value, dict) else 'list'} of {len(value)} items"
    text = str(value)
    return text if len(text) <= _QUOTED else f"a {type(value).__name__}"


def _mapping(doc: Located, value: Any, path: PathKey) -> dict[str, Any]:
    if not isinstance(value, dict):
        # the whole document by its kind alone: a wrong file's content is no part of the message
        got = _describe(value) if path else _KINDS.get(type(value), "something else")
        raise doc.error(path, f"expected a mapping, got {got}")
    return value


def _no_unknown(doc: Located, obj: dict[str, Any], allowed: frozenset[str], path: PathKey) -> None:
    for key in obj:
        if key not in allowed:
            raise doc.error((*path, key), f"unknown key (allowed: {', '.join(sorted(allowed))})")


def _number(doc: Located, value: Any, path: PathKey) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise doc.error(path, f"expected a number >= 0, got {_describe(value)}")
    return float(value)


def _positive_int(doc: Located, value: Any, path: PathKey) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise doc.error(path, f"expected a whole number > 0, got {_describe(value)}")
    return value


def _name(doc: Located, value: Any, path: PathKey, what: str = "a non-empty string") -> str:
    if not isinstance(value, str) or not value.strip():
        raise doc.error(path, f"expected {what}, got {_describe(value)}")
    return value.strip().lower()


def _date(doc: Located, value: Any, path: PathKey) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _DATE.match(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise doc.error(path, f"expected a date YYYY-MM-DD, got {_describe(value)}")


def _prices(doc: Located, obj: dict[str, Any], path: PathKey) -> dict[str, float]:
    return {key: _number(doc, obj[key], (*path, key)) for key in PRICE_KEYS if key in obj}


# --- model entries ------------------------------------------------------------------------------
def _tiers(doc: Located, value: Any, path: PathKey) -> tuple[TierSpec, ...]:
    if not isinstance(value, list):
        raise doc.error(path, f"expected a list of tiers, got {_describe(value)}")
    tiers: list[TierSpec] = []
    for i, item in enumerate(value):
        item_path = (*path, i)
        obj = _mapping(doc, item, item_path)
        _no_unknown(doc, obj, _TIER_KEYS, item_path)
        if "above_input_tokens" not in obj:
            raise doc.error(item_path, "missing required key 'above_input_tokens'")
        above = _positive_int(doc, obj["above_input_tokens"], (*item_path, "above_input_tokens"))
        if tiers and above <= tiers[-1].above_input_tokens:
            raise doc.error(
                (*item_path, "above_input_tokens"),
                f"tiers must be in increasing order, {above} follows {tiers[-1].above_input_tokens}",
            )
        prices = _prices(doc, obj, item_path)
        if not prices:
            raise doc.error(item_path, f"a tier needs at least one price ({', '.join(PRICE_KEYS)})")
        tiers.append(TierSpec(above, prices))
    return tuple(tiers)


def _service_tiers(doc: Located, value: Any, path: PathKey) -> dict[str, ServiceTierSpec]:
    obj = _mapping(doc, value, path)
    out: dict[str, ServiceTierSpec] = {}
    for name, entry in obj.items():
        entry_path = (*path, name)
        key = _name(doc, name, entry_path, "a service tier name")
        entry_obj = _mapping(doc, entry, entry_path)
        _no_unknown(doc, entry_obj, _SERVICE_TIER_KEYS, entry_path)
        prices = _prices(doc, entry_obj, entry_path)
        tiers = _tiers(doc, entry_obj["tiers"], (*entry_path, "tiers")) if "tiers" in entry_obj else ()
        multiplier = None
        if "multiplier" in entry_obj:
            multiplier = _number(doc, entry_obj["multiplier"], (*entry_path, "multiplier"))
            if prices or tiers:
                raise doc.error(entry_path, "give either 'multiplier' or prices, not both")
        elif not prices and not tiers:
            raise doc.error(entry_path, "a service tier needs 'multiplier' or at least one price")
        out[key] = ServiceTierSpec(multiplier, prices, tiers)
    return out


def _period(doc: Located, obj: dict[str, Any], path: PathKey, extra: frozenset[str]) -> PeriodSpec:
    _no_unknown(doc, obj, _PERIOD_KEYS | extra, path)
    start = _date(doc, obj["from"], (*path, "from")) if "from" in obj else None
    if "input" not in obj:
        raise doc.error(path, "missing required key 'input' (USD per million input tokens)")
    prices = _prices(doc, obj, path)
    tiers = _tiers(doc, obj["tiers"], (*path, "tiers")) if "tiers" in obj else ()
    service = (
        _service_tiers(doc, obj["service_tiers"], (*path, "service_tiers")) if "service_tiers" in obj else {}
    )
    return PeriodSpec(start, prices, tiers, service)


def _aliases(doc: Located, value: Any, path: PathKey) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise doc.error(path, f"expected a list of model ids, got {_describe(value)}")
    return tuple(_name(doc, item, (*path, i), "a model id") for i, item in enumerate(value))


def model_entry(
    doc: Located, value: Any, path: PathKey, provider: str, model: str, extra: frozenset[str] = frozenset()
) -> ModelSpec:
    """Validate one model entry: flat prices (one period) or a `periods` list."""
    obj = _mapping(doc, value, path)
    if "periods" in obj:
        flat = [key for key in obj if key in _PERIOD_KEYS]
        if flat:
            raise doc.error((*path, flat[0]), "give prices either at the top of the entry or in 'periods'")
        _no_unknown(doc, obj, _ENTRY_KEYS | extra, path)
        raw_periods = obj["periods"]
        if not isinstance(raw_periods, list) or not raw_periods:
            raise doc.error((*path, "periods"), f"expected a non-empty list, got {_describe(raw_periods)}")
        periods: list[PeriodSpec] = []
        for i, item in enumerate(raw_periods):
            period_path = (*path, "periods", i)
            period = _period(doc, _mapping(doc, item, period_path), period_path, frozenset())
            if i > 0:
                previous = periods[-1].start
                if period.start is None:
                    raise doc.error(
                        period_path, "missing required key 'from' (only the first period may omit it)"
                    )
                if previous is not None and period.start <= previous:
                    raise doc.error(
                        (*period_path, "from"),
                        f"periods must be in increasing date order, {period.start} follows {previous}",
                    )
            periods.append(period)
    else:
        periods = [_period(doc, obj, path, _ENTRY_KEYS - {"periods"} | extra)]
    name = obj.get("name")
    if name is not None and not isinstance(name, str):
        raise doc.error((*path, "name"), f"expected a string, got {_describe(name)}")
    note = obj.get("note")
    if note is not None and not isinstance(note, str):
        raise doc.error((*path, "note"), f"expected a string, got {_describe(note)}")
    aliases = _aliases(doc, obj["aliases"], (*path, "aliases")) if "aliases" in obj else ()
    return ModelSpec(provider, model, name, aliases, tuple(periods), doc.file)


# --- documents ----------------------------------------------------------------------------------
def bundled(doc: Located, into: BundledData) -> None:
    """Validate one bundled data file and add it to `into`."""
    top = _mapping(doc, doc.data, ())
    _no_unknown(doc, top, frozenset({"header", "providers", "provider_aliases", "vendor_prefixes"}), ())
    header = _mapping(doc, top.get("header"), ("header",))
    version = header.get("version")
    if not isinstance(version, str) or not _DATE.match(version):
        raise doc.error(("header", "version"), f"expected a date YYYY-MM-DD, got {_describe(version)}")
    into.headers.append(header)
    into.version = max(into.version, version)
    for provider_key, entry in _mapping(doc, top.get("providers", {}), ("providers",)).items():
        path: PathKey = ("providers", provider_key)
        provider = _name(doc, provider_key, path, "a provider name")
        obj = _mapping(doc, entry, path)
        _no_unknown(
            doc, obj, frozenset({"fallback", "upstream_by_vendor_prefix", "models", "regional_multipliers"}), path
        )
        if "fallback" in obj or "upstream_by_vendor_prefix" in obj:
            fallback = obj.get("fallback", [])
            if not isinstance(fallback, list):
                raise doc.error(
                    (*path, "fallback"), f"expected a list of providers, got {_describe(fallback)}"
                )
            upstream = obj.get("upstream_by_vendor_prefix", False)
            if not isinstance(upstream, bool):
                raise doc.error(
                    (*path, "upstream_by_vendor_prefix"), f"expected true or false, got {upstream!r}"
                )
            into.providers[provider] = ProviderSpec(
                tuple(_name(doc, p, (*path, "fallback", i)) for i, p in enumerate(fallback)), upstream
            )
        for model_key, model_value in _mapping(doc, obj.get("models", {}), (*path, "models")).items():
            model_path = (*path, "models", model_key)
            model = _name(doc, model_key, model_path, "a model id")
            into.models.append(model_entry(doc, model_value, model_path, provider, model))
        if "regional_multipliers" in obj:
            _regional_multipliers(doc, obj["regional_multipliers"], (*path, "regional_multipliers"), provider, into)
    for key in ("provider_aliases", "vendor_prefixes"):
        target = into.provider_aliases if key == "provider_aliases" else into.vendor_prefixes
        for alias, provider_value in _mapping(doc, top.get(key, {}), (key,)).items():
            target[_name(doc, alias, (key, alias))] = _name(doc, provider_value, (key, alias))


def _regional_multipliers(doc: Located, value: Any, path: PathKey, provider: str, into: BundledData) -> None:
    """`{<price provider>: {<model>: <factor>}}`: factors of a borrowed list's prices (see BundledData)."""
    target = into.regional_multipliers.setdefault(provider, {})
    for source_key, models in _mapping(doc, value, path).items():
        source_path = (*path, source_key)
        source = _name(doc, source_key, source_path, "a provider name")
        for model_key, factor in _mapping(doc, models, source_path).items():
            model_path = (*source_path, model_key)
            number = _number(doc, factor, model_path)
            if number == 0:
                raise doc.error(model_path, "expected a number > 0, got 0")
            target[(source, _name(doc, model_key, model_path, "a model id"))] = number


def overrides(doc: Located, provider_aliases: Mapping[str, str]) -> Overrides:
    """Validate a user overrides file (format in the package docstring).

    Provider names (of model entries and discounts) are mapped through `provider_aliases` (the
    bundled older spellings: `xai` -> `x_ai`, ...), so an entry written with an accepted spelling is
    indexed under the canonical name the book resolves with.
    """

    def provider_at(value: Any, path: PathKey) -> str:
        name = _name(doc, value, path, "a provider name")
        return provider_aliases.get(name, name)

    out = Overrides()
    if doc.data is None:
        return out
    top = _mapping(doc, doc.data, ())
    _no_unknown(doc, top, frozenset({"version", "models", "discounts", "deployments"}), ())
    if "version" in top and top["version"] != 1:
        raise doc.error(("version",), f"unsupported format version {_describe(top['version'])} (expected 1)")
    models = top.get("models", {})
    if isinstance(models, dict):
        for model_key, entry in models.items():
            path: PathKey = ("models", model_key)
            model = _name(doc, model_key, path, "a model id")
            obj = _mapping(doc, entry, path)
            if "provider" not in obj:
                raise doc.error(path, "missing required key 'provider' (e.g. openai, anthropic, ollama)")
            provider = provider_at(obj["provider"], (*path, "provider"))
            out.models.append(model_entry(doc, obj, path, provider, model, frozenset({"provider"})))
    elif isinstance(models, list):
        for i, entry in enumerate(models):
            path = ("models", i)
            obj = _mapping(doc, entry, path)
            for required in ("provider", "model"):
                if required not in obj:
                    raise doc.error(path, f"missing required key '{required}'")
            provider = provider_at(obj["provider"], (*path, "provider"))
            model = _name(doc, obj["model"], (*path, "model"), "a model id")
            out.models.append(model_entry(doc, obj, path, provider, model, frozenset({"provider", "model"})))
    else:
        raise doc.error(
            ("models",), f"expected a mapping or a list of model entries, got {_describe(models)}"
        )
    seen: set[tuple[str, str]] = set()
    for i, spec in enumerate(out.models):
        if (spec.provider, spec.model) in seen:
            where: PathKey = ("models", i) if isinstance(models, list) else ("models",)
            raise doc.error(where, f"model {spec.model!r} of provider {spec.provider!r} is given twice")
        seen.add((spec.provider, spec.model))
    for provider_key, value in _mapping(doc, top.get("discounts", {}), ("discounts",)).items():
        path = ("discounts", provider_key)
        provider = provider_at(provider_key, path)
        if provider in out.discounts:
            raise doc.error(path, f"discount of provider {provider!r} is given twice (under another spelling)")
        if isinstance(value, dict):
            _no_unknown(doc, value, frozenset({"all", "models"}), path)
            every = _number(doc, value["all"], (*path, "all")) if "all" in value else None
            per_model = {
                _name(doc, m, (*path, "models", m), "a model id"): _number(doc, v, (*path, "models", m))
                for m, v in _mapping(doc, value.get("models", {}), (*path, "models")).items()
            }
            out.discounts[provider] = Discount(every, per_model)
        else:
            out.discounts[provider] = Discount(_number(doc, value, path), {})
    for name, target in _mapping(doc, top.get("deployments", {}), ("deployments",)).items():
        path = ("deployments", name)
        out.deployments[_name(doc, name, path, "a deployment name")] = _name(doc, target, path, "a model id")
    return out
