"""The `Cost` of one call, and the fast constructor the hot path uses.

A frozen dataclass is the right public shape (hashable, immutable, clear), but its generated
`__init__` goes through `object.__setattr__` once per field, which alone costs about a microsecond.
Pricing builds one `Cost` per LLM call, so `_make_cost` fills in an unfrozen object of the same
slots with plain attribute stores, whose class then becomes `Cost` (~2.5 times faster than setting
each slot through its descriptor); the result is an ordinary `Cost`, indistinguishable from one
built by `Cost(...)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from genai_meter import names
from genai_meter._frozen_twins import unfrozen_twin


@dataclass(frozen=True, slots=True)
class Cost:
    """The USD cost of one call, split by token class.

    `input_usd` is the uncached input only; `cache_write_usd` covers 5-minute and 1-hour writes;
    `output_usd` includes reasoning tokens. `source` says whether the figure was priced from the
    price book (`pricing`), computed from estimated token counts (`estimated`) or reported by the
    provider itself (`provider`). `model` is the canonical model id whose prices were used.
    """

    input_usd: float
    cache_read_usd: float
    cache_write_usd: float
    output_usd: float
    total_usd: float
    source: str
    pricing_version: str
    model: str


_CostSlots = unfrozen_twin(Cost)


def _make_cost(
    input_usd: float,
    cache_read_usd: float,
    cache_write_usd: float,
    output_usd: float,
    total_usd: float,
    source: str,
    pricing_version: str,
    model: str,
) -> Cost:
    made: Any = _CostSlots()
    made.input_usd = input_usd
    made.cache_read_usd = cache_read_usd
    made.cache_write_usd = cache_write_usd
    made.output_usd = output_usd
    made.total_usd = total_usd
    made.source = source
    made.pricing_version = pricing_version
    made.model = model
    made.__class__ = Cost
    cost: Cost = made
    return cost


def provider_cost(total_usd: float, pricing_version: str, model: str) -> Cost:
    """A cost the provider reported itself (e.g. OpenRouter's `usage.cost`).

    The provider gives only a total, so the breakdown stays zero rather than being guessed.
    """
    return Cost(0.0, 0.0, 0.0, 0.0, float(total_usd), names.COST_SOURCE_PROVIDER, pricing_version, model)
