"""The price book: bundled data plus user overrides, and model resolution with a per-id cache.

Resolution is the slow part of pricing (candidate ids, fallbacks between providers, discounts),
and a process sees only a handful of (provider, model) pairs, so each pair is resolved once and
then served from a dict. The bundled data is parsed once per process and shared between books.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from . import _ids
from ._model import ModelPricing
from ._source import PricingError, parse_json, read_document
from ._spec import BundledData, ModelSpec, Overrides, ProviderSpec, bundled
from ._spec import overrides as parse_overrides

DATA_DIR = Path(__file__).parent / "data"
_CACHE_LIMIT = 4096  # distinct (provider, model) strings kept; beyond it, resolve without caching
_MISSING = object()
_NO_PROVIDER = ProviderSpec()


@lru_cache(maxsize=1)
def bundled_data() -> BundledData:
    """All `data/*.json` files, validated (a broken bundled file is a packaging bug: fail loudly)."""
    data = BundledData()
    for path in sorted(DATA_DIR.glob("*.json")):
        label = f"genai_meter/pricing/data/{path.name}"
        text = path.read_text("utf-8")
        try:
            bundled(parse_json(text, label, with_lines=False), data)
        except PricingError:
            bundled(parse_json(text, label), BundledData())  # again with line numbers, to say where
            raise
    seen: set[tuple[str, str]] = set()
    for spec in data.models:
        key = (spec.provider, spec.model)
        if key in seen:
            raise PricingError(
                f"{spec.origin}: model {spec.model!r} of provider {spec.provider!r} is given twice"
            )
        seen.add(key)
    return data


class PriceBook:
    """Prices for every known model; `resolve` finds the one a call used.

    `version` identifies the prices used (`bundled-<date>`, plus `+overrides:<sha256[:12]>` of the
    overrides file) and travels with every cost so a figure can be traced to the prices behind it.
    """

    def __init__(self, data: BundledData, extra: Overrides | None = None, overrides_digest: str = "") -> None:
        self.version = f"bundled-{data.version}" + (
            f"+overrides:{overrides_digest}" if overrides_digest else ""
        )
        extra = extra or Overrides()
        self._providers = data.providers
        self._provider_aliases = data.provider_aliases
        self._vendor_prefixes = data.vendor_prefixes
        self._regional_multipliers = data.regional_multipliers
        self._deployments = extra.deployments
        self._discounts = extra.discounts
        self._cache: dict[tuple[str, str], ModelPricing | None] = {}
        self._compiled: dict[tuple[str, int, float], ModelPricing] = {}
        self._index: dict[str, dict[str, ModelSpec]] = {}
        self._specs: dict[tuple[str, str], ModelSpec] = {}
        for spec in data.models:
            self._index.setdefault(spec.provider, {})[spec.model] = spec
            self._specs[(spec.provider, spec.model)] = spec
        for spec in data.models:  # aliases never shadow a model id
            index = self._index[spec.provider]
            for alias in spec.aliases:
                index.setdefault(alias, spec)
        for spec in extra.models:
            self._add_override(spec)

    def _add_override(self, spec: ModelSpec) -> None:
        """An override replaces the bundled entry it names (with all its aliases) as a whole."""
        index = self._index.setdefault(spec.provider, {})
        old = index.get(spec.model)
        if old is not None:
            for key in [k for k, v in index.items() if v is old]:
                del index[key]
            self._specs.pop((old.provider, old.model), None)
            aliases = (old.model, *old.aliases, *spec.aliases)
            spec = replace(spec, aliases=tuple(dict.fromkeys(a for a in aliases if a != spec.model)))
        index[spec.model] = spec
        for alias in spec.aliases:
            index[alias] = spec
        self._specs[(spec.provider, spec.model)] = spec

    @classmethod
    def load(cls, overrides: str | os.PathLike[str] | None = None) -> PriceBook:
        """The bundled prices, plus a user overrides file (YAML, or JSON by its `.json` extension).

        Raises `PricingError` naming the file, line and field when the file is invalid.
        """
        data = bundled_data()
        if overrides is None:
            return cls(data)
        doc, raw = read_document(overrides)
        return cls(data, parse_overrides(doc, data.provider_aliases), hashlib.sha256(raw).hexdigest()[:12])

    def provider(self, provider: str) -> str:
        """The canonical provider name (`az.ai.openai` -> `azure.ai.openai`, `xai` -> `x_ai`, ...)."""
        provider = provider.strip().lower()
        return self._provider_aliases.get(provider, provider)

    def resolve(self, provider: str, model: str) -> ModelPricing | None:
        """The pricing of `model` called through `provider`, or None when the model is unpriced."""
        key = (provider, model)
        found = self._cache.get(key, _MISSING)
        if found is not _MISSING:
            return found  # type: ignore[return-value]
        result = self._resolve(provider, model)
        if len(self._cache) < _CACHE_LIMIT:
            self._cache[key] = result
        return result

    def _resolve(self, provider: str, model: str) -> ModelPricing | None:
        if not isinstance(provider, str) or not isinstance(model, str) or not model.strip():
            return None
        provider = self.provider(provider)
        model = _ids.clean(model)
        model = self._deployments.get(model, model)
        spec = self._find(provider, model)
        if spec is None and self._providers.get(provider, _NO_PROVIDER).upstream_by_vendor_prefix:
            prefixed = _ids.vendor_prefix(model)
            if prefixed is not None and prefixed[0] in self._vendor_prefixes:
                spec = self._find(self._vendor_prefixes[prefixed[0]], prefixed[1])
        if spec is None:
            return None
        markup = 1.0
        multipliers = self._regional_multipliers.get(provider)
        if multipliers and spec.provider != provider and not _ids.is_global(model):
            markup = multipliers.get((spec.provider, spec.model), 1.0)
        return self._compile(provider, spec, markup)

    def _find(self, provider: str, model: str) -> ModelSpec | None:
        candidates = _ids.candidates(model)
        for source in (provider, *self._providers.get(provider, _NO_PROVIDER).fallback):
            index = self._index.get(source)
            if not index:
                continue
            for candidate in candidates:
                spec = index.get(candidate)
                if spec is not None:
                    return spec
        return None

    def _compile(self, provider: str, spec: ModelSpec, markup: float = 1.0) -> ModelPricing:
        """`markup`: the regional multiplier of a borrowed price list (1 for global and own prices)."""
        key = (provider, id(spec), markup)
        pricing = self._compiled.get(key)
        if pricing is None:
            discount = self._discount(provider, spec.model)
            pricing = ModelPricing(spec, provider, self.version, discount, markup)
            self._compiled[key] = pricing
        return pricing

    def _discount(self, provider: str, model: str) -> float:
        discount = self._discounts.get(provider)
        if discount is None:
            return 1.0
        if model in discount.models:
            return discount.models[model]
        return discount.all if discount.all is not None else 1.0

    def models(self) -> list[ModelPricing]:
        """Every priced model under its own provider, sorted (for listings)."""
        specs = sorted(self._specs.values(), key=lambda s: (s.provider, s.model))
        return [self._compile(spec.provider, spec) for spec in specs]

    def providers(self) -> list[str]:
        return sorted(self._index)
