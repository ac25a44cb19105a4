"""The `Cost` of one call, and the fast constructor the hot path uses.

A frozen dataclass is the right public shape (hashable, immutable, clear), but its generated
`__init__` goes through `object.__setattr__` once per field, which alone costs about a microsecond.
Pricing builds one `Cost` per LLM call, so `_make_cost` fills the slots through their descriptors
instead; the result is an ordinary `Cost`, indistinguishable from one built by `Cost(...)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from genai_meter import names


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


_new = object.__new__
_SETTERS: tuple[Any, ...] = tuple(Cost.__dict__[name].__set__ for name in Cost.__slots__)
(
    _set_input,
    _set_cache_read,
    _set_cache_write,
    _set_output,
    _set_total,
    _set_source,
    _set_version,
    _set_model,
) = _SETTERS
if Cost.__slots__ != (
    "input_usd",
    "cache_read_usd",
    "cache_write_usd",
    "output_usd",
    "total_usd",
    "source",
    "pricing_version",
    "model",
):  # pragma: no cover - guards the setter order above against a field reorder
    raise RuntimeError("Cost fields changed; update _make_cost")


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
    cost: Cost = _new(Cost)
    _set_input(cost, input_usd)
    _set_cache_read(cost, cache_read_usd)
    _set_cache_write(cost, cache_write_usd)
    _set_output(cost, output_usd)
    _set_total(cost, total_usd)
    _set_source(cost, source)
    _set_version(cost, pricing_version)
    _set_model(cost, model)
    return cost


def provider_cost(total_usd: float, pricing_version: str, model: str) -> Cost:
    """A cost the provider reported itself (e.g. OpenRouter's `usage.cost`).

    The provider gives only a total, so the breakdown stays zero rather than being guessed.
    """
    return Cost(0.0, 0.0, 0.0, 0.0, float(total_usd), names.COST_SOURCE_PROVIDER, pricing_version, model)
