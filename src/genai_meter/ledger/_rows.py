"""The ledger row: its columns, and how one CallRecord becomes one row.

Rows are plain tuples of JSON-safe values so the same value goes to SQLite, PostgreSQL and the
spool file unchanged; a row replayed from the spool is byte-for-byte the row that would have been
written. Conversion runs on the writer thread, never on the app's hot path.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Collection, Mapping
from datetime import datetime, timezone
from typing import Any

from .._record import CallRecord

# Column order of the calls table (after the surrogate id), shared by both backends and the spool.
COLUMNS: tuple[str, ...] = (
    "call_key",
    "ts",
    "day",
    "response_id",
    "request_id",
    "provider",
    "request_model",
    "response_model",
    "model",
    "operation",
    "user_id",
    "tenant",
    "feature",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "usage_estimated",
    "cost_input_usd",
    "cost_cache_read_usd",
    "cost_cache_write_usd",
    "cost_output_usd",
    "cost_usd",
    "cost_source",
    "pricing_version",
    "latency_s",
    "stream",
    "outcome",
    "error_type",
    "trace_id",
    "span_id",
    "metadata",
)
BOOL_COLUMNS = frozenset({"usage_estimated", "stream"})

Row = tuple[Any, ...]

MAX_METADATA_VALUE_CHARS = 256
MAX_METADATA_KEY_CHARS = 64


def utc_day(ts: float) -> str:
    """The UTC calendar day of a Unix time, as YYYY-MM-DD (the ledger's unit of grouping)."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d")


_day_cache: dict[int, str] = {}


def _cached_day(ts: float) -> str:
    """utc_day for the writer: consecutive records share a day, so format each day once."""
    number = int(ts // 86400)
    day = _day_cache.get(number)
    if day is None:
        if len(_day_cache) > 4096:
            _day_cache.clear()
        day = _day_cache[number] = utc_day(number * 86400)
    return day


class RowMaker:
    """Turns CallRecords into rows, applying the metadata bounds fixed at construction."""

    def __init__(self, metadata_keys: Collection[str] | None = None, max_metadata_items: int = 16) -> None:
        self._keys = frozenset(metadata_keys) if metadata_keys is not None else None
        self._max_items = max(0, int(max_metadata_items))

    def metadata_json(self, metadata: Mapping[str, Any] | None) -> str | None:
        """Bounded metadata as compact JSON, or None when nothing is kept.

        Bounded because metadata comes from app code: an unbounded dict (or a prompt pasted into
        it by mistake) must not bloat every row.
        """
        if not metadata or self._max_items == 0:
            return None
        kept: dict[str, Any] = {}
        for key, value in metadata.items():
            if len(kept) >= self._max_items:
                break
            name = str(key)[:MAX_METADATA_KEY_CHARS]
            if self._keys is not None and str(key) not in self._keys:
                continue
            kept[name] = _bounded_value(value)
        return json.dumps(kept, separators=(",", ":"), ensure_ascii=False) if kept else None

    def row(self, record: CallRecord) -> Row:
        """One row; a record with neither response nor request id gets a random key (never merged)."""
        key = record.response_id or record.request_id or f"gm-{uuid.uuid4().hex}"
        ts = float(record.time)
        response_model = record.response_model or None
        return (
            key,
            ts,
            _cached_day(ts),
            record.response_id or None,
            record.request_id or "",
            record.provider,
            record.request_model,
            response_model,
            response_model or record.request_model,
            record.operation,
            record.user,
            record.tenant,
            record.feature,
            int(record.input_tokens),
            int(record.output_tokens),
            int(record.cache_read_tokens),
            int(record.cache_write_tokens),
            int(record.reasoning_tokens),
            bool(record.usage_estimated),
            _money(record.cost_input_usd),
            _money(record.cost_cache_read_usd),
            _money(record.cost_cache_write_usd),
            _money(record.cost_output_usd),
            _money(record.cost_usd),
            record.cost_source,
            record.pricing_version,
            float(record.latency_s),
            bool(record.stream),
            record.outcome,
            record.error_type,
            record.trace_id,
            record.span_id,
            self.metadata_json(record.metadata),
        )


def _money(value: float | None) -> float | None:
    """None stays None (unpriced is not $0); NaN and infinities are not money either."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _bounded_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return str(value)[:MAX_METADATA_VALUE_CHARS]
