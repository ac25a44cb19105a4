"""Admin usage and cost reports built from the calls this fake served, for ledger reconciliation.

Only what reconciliation reads is modelled: time buckets (UTC-aligned, empty ones included), grouping
by model (usage) or line item / description (costs), and one page (`has_more: false`). Costs use the
model-independent FAKE_PRICES_PER_MTOK below so a test can compute the expected dollars by hand;
tests that need specific figures override a report with `FakeProvider.set_report`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from ._wire import UsageRecord

# USD per million tokens; the same for every model on purpose (see module docstring).
FAKE_PRICES_PER_MTOK: dict[str, Decimal] = {
    "input": Decimal("1.00"),
    "cached_input": Decimal("0.10"),
    "cache_write_5m": Decimal("1.25"),
    "cache_write_1h": Decimal("2.00"),
    "output": Decimal("4.00"),
}

_WIDTHS = {"1m": 60, "1h": 3600, "1d": 86400}
_MAX_BUCKETS = 5000
_OPENAI_GROUPS = ("project_id", "user_id", "api_key_id", "model", "batch", "service_tier", "api_source")
_ANTHROPIC_GROUPS = (
    "api_key_id",
    "workspace_id",
    "model",
    "service_tier",
    "context_window",
    "inference_geo",
    "speed",
)

Query = dict[str, list[str]]


class ReportError(ValueError):
    """A bad report query: answered with a 400 naming the parameter."""


def _n(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(query: Query, name: str) -> list[str]:
    values = query.get(name, []) + query.get(name + "[]", [])
    return [part for value in values for part in value.split(",") if part]


def _one(query: Query, name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _unix(query: Query, name: str, required: bool) -> float | None:
    raw = _one(query, name)
    if raw is None:
        if required:
            raise ReportError(f"missing required query parameter {name}")
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ReportError(f"query parameter {name}: cannot read {raw!r} as a time") from None


def _buckets(query: Query, start_name: str, end_name: str, now: float) -> list[tuple[int, int]]:
    width_name = _one(query, "bucket_width") or "1d"
    width = _WIDTHS.get(width_name)
    if width is None:
        raise ReportError(f"query parameter bucket_width: unsupported value {width_name!r}")
    start = _unix(query, start_name, required=True) or 0.0
    end = _unix(query, end_name, required=False)
    first = int(start // width) * width
    stop = int(end) if end is not None else (int(now // width) + 1) * width
    count = min(max(0, -(-(stop - first) // width)), _MAX_BUCKETS)
    return [(first + i * width, min(first + (i + 1) * width, stop)) for i in range(count)]


def _group(
    records: Iterable[UsageRecord],
    buckets: list[tuple[int, int]],
    key: Callable[[UsageRecord], tuple[Any, ...]],
) -> list[dict[tuple[Any, ...], list[UsageRecord]]]:
    grouped: list[dict[tuple[Any, ...], list[UsageRecord]]] = [{} for _ in buckets]
    for record in records:
        for index, (low, high) in enumerate(buckets):
            if low <= record.at < high:
                grouped[index].setdefault(key(record), []).append(record)
                break
    return grouped


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _page(data: list[dict[str, Any]], with_object: bool) -> dict[str, Any]:
    page: dict[str, Any] = {"data": data, "has_more": False, "next_page": None}
    if with_object:
        page["object"] = "page"
    return page


# --- OpenAI -------------------------------------------------------------------------------------


def _openai_tokens(usage: dict[str, Any]) -> dict[str, int]:
    """input (incl. cached and cache writes), cached, cache_write, output of one OpenAI usage object."""
    chat_style = "prompt_tokens" in usage
    details = _dict(usage.get("prompt_tokens_details" if chat_style else "input_tokens_details"))
    return {
        "input": _n(usage.get("prompt_tokens" if chat_style else "input_tokens")),
        "cached": _n(details.get("cached_tokens")),
        "cache_write": _n(details.get("cache_write_tokens")),
        "output": _n(usage.get("completion_tokens" if chat_style else "output_tokens")),
    }


_TOKEN_NAMES = ("input", "cached", "cache_write", "output")


def _openai_group_values(record: UsageRecord, wanted: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = dict.fromkeys(_OPENAI_GROUPS)
    known = {"model": record.model, "batch": False, "service_tier": "default", "api_source": "unlabeled"}
    for name in wanted:
        if name in values:
            values[name] = known.get(name)
    return values


def openai_usage(kind: str, records: list[UsageRecord], query: Query, now: float) -> dict[str, Any]:
    """`/v1/organization/usage/{completions,embeddings}`; `kind` is the path's last segment."""
    api = f"openai.{kind}"
    wanted = _list(query, "group_by")
    models = set(_list(query, "models"))
    chosen = [r for r in records if r.api == api and (not models or r.model in models)]
    buckets = _buckets(query, "start_time", "end_time", now)

    def key(record: UsageRecord) -> tuple[Any, ...]:
        return tuple(_openai_group_values(record, wanted).values())

    data = []
    for (low, high), groups in zip(buckets, _group(chosen, buckets, key), strict=True):
        results = []
        for members in groups.values():
            result: dict[str, Any] = {"object": f"organization.usage.{kind}.result"}
            if kind == "completions":
                sums = {name: sum(_openai_tokens(r.usage)[name] for r in members) for name in _TOKEN_NAMES}
                result |= {
                    "input_tokens": sums["input"],
                    "output_tokens": sums["output"],
                    "input_cached_tokens": sums["cached"],
                    "input_cache_write_tokens": sums["cache_write"],
                    "input_uncached_tokens": sums["input"] - sums["cached"] - sums["cache_write"],
                    "input_audio_tokens": 0,
                    "output_audio_tokens": 0,
                }
            else:
                result["input_tokens"] = sum(_n(r.usage.get("prompt_tokens")) for r in members)
            result["num_model_requests"] = len(members)
            result |= _openai_group_values(members[0], wanted)
            results.append(result)
        data.append({"object": "bucket", "start_time": low, "end_time": high, "results": results})
    return _page(data, with_object=True)


def _openai_line_items(record: UsageRecord) -> list[tuple[str, int, Decimal]]:
    if record.api == "openai.embeddings":
        tokens = _n(record.usage.get("prompt_tokens"))
        return [(f"{record.model}, input", tokens, FAKE_PRICES_PER_MTOK["input"])]
    t = _openai_tokens(record.usage)
    return [
        (f"{record.model}, input", t["input"] - t["cached"], FAKE_PRICES_PER_MTOK["input"]),
        (f"{record.model}, cached input", t["cached"], FAKE_PRICES_PER_MTOK["cached_input"]),
        (f"{record.model}, output", t["output"], FAKE_PRICES_PER_MTOK["output"]),
    ]


def openai_costs(records: list[UsageRecord], query: Query, now: float) -> dict[str, Any]:
    """`/v1/organization/costs`: input (uncached + cache writes), cached input and output per model."""
    wanted = _list(query, "group_by")
    by_line = "line_item" in wanted
    chosen = [r for r in records if r.api.startswith("openai.")]
    buckets = _buckets(query, "start_time", "end_time", now)
    data = []
    for (low, high), groups in zip(buckets, _group(chosen, buckets, lambda r: ()), strict=True):
        totals: dict[str | None, tuple[int, Decimal]] = {}
        for record in groups.get((), []):
            for line, tokens, price in _openai_line_items(record):
                name = line if by_line else None
                count, amount = totals.get(name, (0, Decimal(0)))
                totals[name] = (count + tokens, amount + Decimal(tokens) * price / 1_000_000)
        results = [
            {
                "object": "organization.costs.result",
                "amount": {"value": float(amount), "currency": "usd"},
                "line_item": name,
                "project_id": None,
                "api_key_id": None,
                "user_id": None,
                "api_source": None,
                "quantity": float(count) if by_line else None,
                "quantity_unit": "tokens" if by_line else None,
            }
            for name, (count, amount) in sorted(totals.items(), key=lambda kv: kv[0] or "")
            if count
        ]
        data.append({"object": "bucket", "start_time": low, "end_time": high, "results": results})
    return _page(data, with_object=True)


# --- Anthropic ----------------------------------------------------------------------------------


def _anthropic_tokens(usage: dict[str, Any]) -> dict[str, int]:
    breakdown = usage.get("cache_creation")
    if isinstance(breakdown, dict):
        write_5m = _n(breakdown.get("ephemeral_5m_input_tokens"))
        write_1h = _n(breakdown.get("ephemeral_1h_input_tokens"))
    else:
        write_5m, write_1h = _n(usage.get("cache_creation_input_tokens")), 0
    return {
        "uncached_input_tokens": _n(usage.get("input_tokens")),
        "cache_read_input_tokens": _n(usage.get("cache_read_input_tokens")),
        "cache_creation.ephemeral_5m_input_tokens": write_5m,
        "cache_creation.ephemeral_1h_input_tokens": write_1h,
        "output_tokens": _n(usage.get("output_tokens")),
    }


_ANTHROPIC_PRICES = {
    "uncached_input_tokens": FAKE_PRICES_PER_MTOK["input"],
    "cache_read_input_tokens": FAKE_PRICES_PER_MTOK["cached_input"],
    "cache_creation.ephemeral_5m_input_tokens": FAKE_PRICES_PER_MTOK["cache_write_5m"],
    "cache_creation.ephemeral_1h_input_tokens": FAKE_PRICES_PER_MTOK["cache_write_1h"],
    "output_tokens": FAKE_PRICES_PER_MTOK["output"],
}


def anthropic_usage(records: list[UsageRecord], query: Query, now: float) -> dict[str, Any]:
    """`/v1/organizations/usage_report/messages`."""
    wanted = _list(query, "group_by")
    models = set(_list(query, "models"))
    chosen = [r for r in records if r.api == "anthropic.messages" and (not models or r.model in models)]
    buckets = _buckets(query, "starting_at", "ending_at", now)
    known = {"service_tier": "standard", "context_window": "0-200k"}

    def groups_of(record: UsageRecord) -> dict[str, Any]:
        values: dict[str, Any] = dict.fromkeys(_ANTHROPIC_GROUPS)
        for name in wanted:
            if name in values:
                values[name] = record.model if name == "model" else known.get(name)
        return values

    data = []
    grouped = _group(chosen, buckets, lambda r: tuple(groups_of(r).values()))
    for (low, high), groups in zip(buckets, grouped, strict=True):
        results = []
        for members in groups.values():
            sums = {
                name: sum(_anthropic_tokens(r.usage)[name] for r in members) for name in _ANTHROPIC_PRICES
            }
            results.append(
                {
                    "uncached_input_tokens": sums["uncached_input_tokens"],
                    "cache_creation": {
                        "ephemeral_5m_input_tokens": sums["cache_creation.ephemeral_5m_input_tokens"],
                        "ephemeral_1h_input_tokens": sums["cache_creation.ephemeral_1h_input_tokens"],
                    },
                    "cache_read_input_tokens": sums["cache_read_input_tokens"],
                    "output_tokens": sums["output_tokens"],
                    "server_tool_use": {"web_search_requests": 0},
                    **groups_of(members[0]),
                }
            )
        data.append({"starting_at": _iso(low), "ending_at": _iso(high), "results": results})
    return _page(data, with_object=False)


def _cents(usd: Decimal) -> str:
    return format((usd * 100).normalize(), "f")


def anthropic_costs(records: list[UsageRecord], query: Query, now: float) -> dict[str, Any]:
    """`/v1/organizations/cost_report`: amounts are decimal strings in cents, as the real API sends."""
    by_description = "description" in _list(query, "group_by")
    chosen = [r for r in records if r.api == "anthropic.messages"]
    buckets = _buckets(query, "starting_at", "ending_at", now)
    data = []
    for (low, high), groups in zip(buckets, _group(chosen, buckets, lambda r: ()), strict=True):
        totals: dict[tuple[str, str] | None, Decimal] = {}
        for record in groups.get((), []):
            for token_type, tokens in _anthropic_tokens(record.usage).items():
                if tokens:
                    name = (record.model, token_type) if by_description else None
                    cost = Decimal(tokens) * _ANTHROPIC_PRICES[token_type] / 1_000_000
                    totals[name] = totals.get(name, Decimal(0)) + cost
        results = []
        for name, usd in sorted(totals.items(), key=lambda kv: kv[0] or ("", "")):
            row: dict[str, Any] = {
                "currency": "USD",
                "amount": _cents(usd),
                "workspace_id": None,
                "description": None,
                "cost_type": None,
                "context_window": None,
                "model": None,
                "service_tier": None,
                "token_type": None,
            }
            if name is not None:
                row |= {
                    "description": f"{name[0]} - {name[1]}",
                    "cost_type": "tokens",
                    "context_window": "0-200k",
                    "model": name[0],
                    "service_tier": "standard",
                    "token_type": name[1],
                }
            results.append(row)
        data.append({"starting_at": _iso(low), "ending_at": _iso(high), "results": results})
    return _page(data, with_object=False)
