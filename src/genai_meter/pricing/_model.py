"""One resolved model's prices, compiled for the hot path.

Everything that does not depend on the call is done once, here: fallbacks (cache read at the input
price when absent, 1-hour writes at the 5-minute price, ...), tier inheritance, service-tier
overlays and negotiated discounts are folded into flat tuples of five floats per level, and dated
periods become a sorted list of start times for `bisect`. `cost()` is then a bisect, a short scan
of long-context thresholds and five multiply-adds.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import datetime, timezone
from typing import Any

from genai_meter import names
from genai_meter._usage import Usage

from ._cost import Cost, _make_cost
from ._spec import PRICE_KEYS, ModelSpec, PeriodSpec, TierSpec

# Seven prices in USD per million tokens: input, cache_read, cache_write (5m), cache_write_1h, output,
# input_audio, output_audio (`PRICE_KEYS`' order).
Rates = tuple[float, float, float, float, float, float, float]
_STANDARD_TIERS = frozenset({"", "default", "standard", "auto", "on_demand"})
_PRICING = names.COST_SOURCE_PRICING
_ESTIMATED = names.COST_SOURCE_ESTIMATED


class _Levels:
    """Rates by long-context level: `rates[i]` applies when input tokens exceed `thresholds[i-1]`."""

    __slots__ = ("rates", "thresholds")

    def __init__(self, thresholds: tuple[int, ...], rates: tuple[Rates, ...]) -> None:
        self.thresholds = thresholds
        self.rates = rates

    def scaled(self, factor: float) -> _Levels:
        if factor == 1.0:
            return self
        return _Levels(self.thresholds, tuple(_scale(r, factor) for r in self.rates))


def _scale(rates: Rates, factor: float) -> Rates:
    return (
        rates[0] * factor,
        rates[1] * factor,
        rates[2] * factor,
        rates[3] * factor,
        rates[4] * factor,
        rates[5] * factor,
        rates[6] * factor,
    )


def _price_at(
    base: dict[str, float], tiers: tuple[TierSpec, ...], key: str, level_above: int
) -> float | None:
    """A key's price when tiers with threshold <= `level_above` are active (a tier that omits the
    key keeps the next lower level's price, as the providers' own tables read)."""
    value = base.get(key)
    for tier in tiers:
        if tier.above_input_tokens <= level_above and key in tier.prices:
            value = tier.prices[key]
    return value


def _complete(raw: dict[str, float | None]) -> Rates:
    input_price = raw["input"]
    assert input_price is not None  # validated: every period has an input price
    cache_read = raw["cache_read"]
    cache_write = raw["cache_write"]
    cache_write_1h = raw["cache_write_1h"]
    output = raw["output"] if raw["output"] is not None else 0.0
    input_audio = raw["input_audio"]
    output_audio = raw["output_audio"]
    if cache_read is None:
        cache_read = input_price
    if cache_write is None:
        cache_write = input_price
    if cache_write_1h is None:
        cache_write_1h = cache_write
    return (
        input_price,
        cache_read,
        cache_write,
        cache_write_1h,
        output,
        input_audio if input_audio is not None else input_price,  # (no audio price: the text one)
        output_audio if output_audio is not None else output,
    )


def _compile_period(period: PeriodSpec) -> tuple[_Levels, dict[str, _Levels]]:
    standard = _levels([(period.prices, period.tiers)])
    service: dict[str, _Levels] = {}
    for name, spec in period.service_tiers.items():
        if spec.multiplier is not None:
            service[name] = standard.scaled(spec.multiplier)
        else:
            service[name] = _levels([(spec.prices, spec.tiers), (period.prices, period.tiers)])
    return standard, service


def _levels(layers: list[tuple[dict[str, float], tuple[TierSpec, ...]]]) -> _Levels:
    """Rates per level; for each key the first layer that prices it wins (overlay, then standard)."""
    thresholds = tuple(sorted({tier.above_input_tokens for _, tiers in layers for tier in tiers}))
    rates: list[Rates] = []
    for level_above in (-1, *thresholds):
        raw: dict[str, float | None] = {}
        for key in PRICE_KEYS:
            value = None
            for base, tiers in layers:
                if key in base or any(key in tier.prices for tier in tiers):
                    value = _price_at(base, tiers, key, level_above)
                    if value is not None:
                        break
            raw[key] = value
        rates.append(_complete(raw))
    return _Levels(thresholds, tuple(rates))


def _epoch(day: Any) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()


class ModelPricing:
    """The prices of one model as resolved for one provider, ready to price calls.

    `provider` is the provider the call went to (after aliasing, e.g. `azure.ai.openai`);
    `price_provider` is whose price list was used (e.g. `openai`); `model` is the canonical id.
    `discount` (the overrides') and `markup` (the calling provider's factor on a borrowed list:
    Claude on Bedrock in-region is 1.1 x Anthropic's prices) are folded into the rates.
    """

    __slots__ = (
        "_service",
        "_standard",
        "_starts",
        "discount",
        "markup",
        "model",
        "name",
        "price_provider",
        "provider",
        "spec",
        "version",
    )

    def __init__(
        self, spec: ModelSpec, provider: str, version: str, discount: float = 1.0, markup: float = 1.0
    ) -> None:
        self.spec = spec
        self.provider = provider
        self.price_provider = spec.provider
        self.model = spec.model
        self.name = spec.name
        self.version = version
        self.discount = discount
        self.markup = markup  # the provider's factor on the borrowed list (Bedrock in-region Claude)
        factor = discount * markup
        standard: list[_Levels] = []
        service: list[dict[str, _Levels]] = []
        for period in spec.periods:
            levels, tiers = _compile_period(period)
            standard.append(levels.scaled(factor))
            service.append({name: lv.scaled(factor) for name, lv in tiers.items()})
        self._standard = tuple(standard)
        self._service = tuple(service)
        # Start of every period but the first: the first also covers calls before its own start.
        self._starts = [_epoch(p.start) for p in spec.periods[1:] if p.start is not None]

    @property
    def periods(self) -> tuple[PeriodSpec, ...]:
        return self.spec.periods

    def rates(self, at: float, service_tier: str | None = None, input_tokens: int = 0) -> Rates:
        """The seven per-million prices (after fallbacks and discount) that `cost` would use."""
        index = bisect_right(self._starts, at) if self._starts else 0
        levels = self._standard[index]
        if service_tier is not None and service_tier not in _STANDARD_TIERS:
            levels = self._service[index].get(service_tier.lower(), levels)
        rates = levels.rates[0]
        for i, threshold in enumerate(levels.thresholds):
            if input_tokens > threshold:
                rates = levels.rates[i + 1]
        return rates

    def cost(self, usage: Usage, at: float, service_tier: str | None = None) -> Cost:
        """Price one call made at unix time `at`.

        The period in force at `at` is used (the earliest one for calls before it); a long-context
        tier applies to the whole call once `usage.input_tokens` exceeds its threshold; an unknown
        `service_tier` is priced at standard rates. A call with `parts` (requests billed apart) is
        priced request by request.
        """
        if usage.parts:
            return self._cost_by_request(usage, at, service_tier)
        starts = self._starts
        index = bisect_right(starts, at) if starts else 0
        levels = self._standard[index]
        if service_tier is not None and service_tier not in _STANDARD_TIERS:
            service = self._service[index]
            levels = service.get(service_tier) or service.get(service_tier.lower(), levels)
        input_tokens = usage.input_tokens
        thresholds = levels.thresholds
        if thresholds:
            level = 0
            for threshold in thresholds:
                if input_tokens > threshold:
                    level += 1
            p_in, p_read, p_write, p_write_1h, p_out, p_in_audio, p_out_audio = levels.rates[level]
        else:
            p_in, p_read, p_write, p_write_1h, p_out, p_in_audio, p_out_audio = levels.rates[0]
        cache_read = usage.cache_read_tokens
        cache_write = usage.cache_write_tokens
        cache_write_1h = usage.cache_write_1h_tokens
        if cache_write_1h > cache_write:
            cache_write_1h = cache_write
        uncached = input_tokens - cache_read - cache_write
        if uncached < 0:
            uncached = 0
        output_tokens = usage.output_tokens
        # Audio tokens are part of the input and output counts (not of the cache reads), priced at
        # the audio prices (the text ones where the model has none).
        audio_in = usage.audio_input_tokens
        audio_out = usage.audio_output_tokens
        if audio_in or audio_out:
            if audio_in > uncached:
                audio_in = uncached
            if audio_out > output_tokens:
                audio_out = output_tokens
            input_usd = ((uncached - audio_in) * p_in + audio_in * p_in_audio) / 1e6
            output_usd = ((output_tokens - audio_out) * p_out + audio_out * p_out_audio) / 1e6
        else:
            input_usd = uncached * p_in / 1e6
            output_usd = output_tokens * p_out / 1e6
        read_usd = cache_read * p_read / 1e6
        write_usd = ((cache_write - cache_write_1h) * p_write + cache_write_1h * p_write_1h) / 1e6
        return _make_cost(
            input_usd,
            read_usd,
            write_usd,
            output_usd,
            input_usd + read_usd + write_usd + output_usd,
            _ESTIMATED if usage.estimated else _PRICING,
            self.version,
            self.model,
        )

    def _cost_by_request(self, usage: Usage, at: float, service_tier: str | None) -> Cost:
        """The sum of each request's cost: the call's own (its counts less the parts') and each part's."""
        parts = usage.parts
        own = Usage(
            input_tokens=usage.input_tokens - sum(part.input_tokens for part in parts),
            output_tokens=usage.output_tokens - sum(part.output_tokens for part in parts),
            cache_read_tokens=usage.cache_read_tokens - sum(part.cache_read_tokens for part in parts),
            cache_write_tokens=usage.cache_write_tokens - sum(part.cache_write_tokens for part in parts),
            cache_write_1h_tokens=usage.cache_write_1h_tokens - sum(part.cache_write_1h_tokens for part in parts),
            estimated=usage.estimated,
        )
        costs = [self.cost(request, at, service_tier) for request in (own, *parts)]
        return _make_cost(
            sum(cost.input_usd for cost in costs),
            sum(cost.cache_read_usd for cost in costs),
            sum(cost.cache_write_usd for cost in costs),
            sum(cost.output_usd for cost in costs),
            sum(cost.total_usd for cost in costs),
            costs[0].source,
            self.version,
            self.model,
        )

    def __repr__(self) -> str:
        return f"ModelPricing(provider={self.provider!r}, model={self.model!r}, version={self.version!r})"
