"""The ledger row: its columns, and how one CallRecord becomes one row.

Rows are plain tuples of JSON-safe values so the same value goes to SQLite, PostgreSQL and the
spool file unchanged; a row replayed from the spool is byte-for-byte the row that would have been
written. Conversion runs on the writer thread, never on the app's hot path.

Every row is made storable here (`storable`), because one value a backend refuses would otherwise
fail its whole batch: text loses NUL characters and lone surrogates (PostgreSQL refuses NUL, UTF-8
cannot encode a lone surrogate, so neither the database nor the spool could take them), integers
are clamped to signed 64 bits (SQLite INTEGER, PostgreSQL BIGINT), and floats that are not finite
become "unknown" (a cost is unpriced, a latency 0, a call time the time the row is made).
"""

from __future__ import annotations

import json
import math
import operator
import re
import time
import uuid
from collections.abc import Collection, Mapping, Sequence
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
    "service_tier",
)
# The columns each earlier schema's rows lacked at their end (`storable` reads rows of an older
# version's spool): the row of schema 1 had no service tier.
_ADDED_SINCE = {len(COLUMNS) - 1: (None,)}
BOOL_COLUMNS = frozenset({"usage_estimated", "stream"})
INT_COLUMNS = frozenset(
    {"input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens"}
)
MONEY_COLUMNS = frozenset(
    {"cost_input_usd", "cost_cache_read_usd", "cost_cache_write_usd", "cost_output_usd", "cost_usd"}
)
# NOT NULL text columns: None there becomes "" (SQLite's INSERT OR IGNORE would drop the row silently).
REQUIRED_TEXT_COLUMNS = frozenset(
    {"call_key", "request_id", "provider", "request_model", "model", "operation", "outcome"}
)

Row = tuple[Any, ...]

MAX_METADATA_VALUE_CHARS = 256
MAX_METADATA_KEY_CHARS = 64

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# Unix times whose UTC day has a four-digit year (0001-01-01 .. 9999-12-31): the `day` column.
_MIN_TS = -62_135_596_800.0
_END_TS = 253_402_300_800.0
# What neither PostgreSQL text (NUL) nor UTF-8 (lone surrogates: the spool, both databases) can hold.
_UNSTORABLE_CHARS = re.compile("[\x00\ud800-\udfff]")
_REPLACEMENT = "\ufffd"


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


def storable_text(value: Any) -> str | None:
    """Text every backend and the spool accept: NUL and lone surrogates become U+FFFD.

    Non-text values (an int user id) become their text, so both backends store the same thing.
    """
    if value is None:
        return None
    text = value if type(value) is str else str(value)
    return text if _is_clean(text) else _UNSTORABLE_CHARS.sub(_REPLACEMENT, text)


def _is_clean(text: str) -> bool:
    if text.isascii():  # a flag on the string object: no scan
        return "\x00" not in text
    return _UNSTORABLE_CHARS.search(text) is None


def _required_text(value: Any) -> str:
    return storable_text(value) or ""


def storable_int(value: Any) -> int:
    """An integer clamped to signed 64 bits; NaN counts as 0 and infinities as the nearest bound.

    Raises ValueError or TypeError for a value that is no number at all (a malformed record).
    """
    if isinstance(value, float) and not math.isfinite(value):
        return 0 if math.isnan(value) else (INT64_MAX if value > 0 else INT64_MIN)
    number = int(value)
    return INT64_MIN if number < INT64_MIN else INT64_MAX if number > INT64_MAX else number


def _float(value: Any) -> float:
    """float(value), with an integer too big for a float read as infinite rather than raising."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _money(value: Any) -> float | None:
    """None stays None (unpriced is not $0); NaN and infinities are not money either."""
    if value is None:
        return None
    number = _float(value)
    return number if math.isfinite(number) else None


def _unix_time(value: Any) -> float:
    """The call time, or the time now when it cannot be placed on a UTC day (NaN, inf, year 10000)."""
    ts = _float(value)
    return ts if _MIN_TS <= ts < _END_TS else time.time()


def _latency(value: Any) -> float:
    number = _float(value)
    return number if math.isfinite(number) else 0.0


def _indexes(names: Collection[str]) -> tuple[int, ...]:
    return tuple(i for i, name in enumerate(COLUMNS) if name in names)


_NUMERIC = INT_COLUMNS | MONEY_COLUMNS | BOOL_COLUMNS | {"ts", "day", "latency_s"}
_TEXT_AT = _indexes(set(COLUMNS) - _NUMERIC - REQUIRED_TEXT_COLUMNS)
_REQUIRED_TEXT_AT = _indexes(REQUIRED_TEXT_COLUMNS)
_INT_AT = _indexes(INT_COLUMNS)
_MONEY_AT = _indexes(MONEY_COLUMNS)
_BOOL_AT = _indexes(BOOL_COLUMNS)
_optional_texts = operator.itemgetter(*_TEXT_AT)
_required_texts = operator.itemgetter(*_REQUIRED_TEXT_AT)
_TS_AT = COLUMNS.index("ts")
_DAY_AT = COLUMNS.index("day")
_LATENCY_AT = COLUMNS.index("latency_s")


def _texts_are_storable(values: Sequence[Any]) -> bool:
    """Whether every text value is already storable, checked in a few C-level passes (the common
    case: one check of all text joined instead of one per column)."""
    try:  # join raises TypeError for a value that is not text (or a None where text is required)
        text = "".join([value for value in _optional_texts(values) if value is not None])
        text += "".join(_required_texts(values))
    except TypeError:
        return False
    return _is_clean(text)


def storable(values: Sequence[Any]) -> Row:
    """The row for `values` (in COLUMNS order) that every backend and the spool can store.

    Used for new rows and for rows read back from the spool (one written by an older version may
    hold values this version no longer produces). The day is always derived from the time, so the
    two never disagree. Raises ValueError or TypeError for values not of their column's kind at all.
    Loops per kind of column, not a function per column: this runs for every row the writer writes.
    """
    if len(values) != len(COLUMNS):
        added = _ADDED_SINCE.get(len(values))
        if added is None:
            raise ValueError(f"a ledger row has {len(COLUMNS)} values, not {len(values)}")
        values = (*values, *added)  # (a row spooled by an earlier version)
    row = list(values)
    if not _texts_are_storable(values):
        for i in _TEXT_AT:
            row[i] = storable_text(row[i])
        for i in _REQUIRED_TEXT_AT:
            row[i] = _required_text(row[i])
    for i in _INT_AT:
        value = row[i]
        if type(value) is not int or not INT64_MIN <= value <= INT64_MAX:
            row[i] = storable_int(value)
    for i in _MONEY_AT:
        row[i] = _money(row[i])
    for i in _BOOL_AT:
        row[i] = bool(row[i])
    row[_TS_AT] = ts = _unix_time(row[_TS_AT])
    row[_DAY_AT] = _cached_day(ts)
    row[_LATENCY_AT] = _latency(row[_LATENCY_AT])
    return tuple(row)


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
            if self._keys is not None and str(key) not in self._keys:
                continue
            kept[_required_text(key)[:MAX_METADATA_KEY_CHARS]] = _bounded_value(value)
        return json.dumps(kept, separators=(",", ":"), ensure_ascii=False) if kept else None

    def row(self, record: CallRecord) -> Row:
        """One storable row; a record with neither response nor request id gets a random key (never
        merged). Raises ValueError or TypeError for a malformed record (a token count that is text)."""
        key = record.response_id or record.request_id or f"gm-{uuid.uuid4().hex}"
        response_model = record.response_model or None
        values = (
            key,
            record.time,
            None,
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
            record.input_tokens,
            record.output_tokens,
            record.cache_read_tokens,
            record.cache_write_tokens,
            record.reasoning_tokens,
            record.usage_estimated,
            record.cost_input_usd,
            record.cost_cache_read_usd,
            record.cost_cache_write_usd,
            record.cost_output_usd,
            record.cost_usd,
            record.cost_source,
            record.pricing_version,
            record.latency_s,
            record.stream,
            record.outcome,
            record.error_type,
            record.trace_id,
            record.span_id,
            self.metadata_json(record.metadata),
            record.service_tier,
        )
        return storable(values)


def _bounded_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return _required_text(value)[:MAX_METADATA_VALUE_CHARS]
